// Command placement is Dapr's actor placement service (needed by actors and workflows).
package main

import "github.com/dapr/dapr/cmd/placement/app"

func main() {
	app.Run()
}
