// Command sentry is Dapr's certificate authority: it issues the workload certificates that
// daprd sidecars use for mTLS, and the SPIFFE identity that app-id access control checks.
package main

import "github.com/dapr/dapr/cmd/sentry/app"

func main() {
	app.Run()
}
