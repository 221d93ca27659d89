// Command daprd is the Dapr sidecar, built with the component set registered in components.go.
package main

import "github.com/dapr/dapr/cmd/daprd/app"

func main() {
	app.Run()
}
