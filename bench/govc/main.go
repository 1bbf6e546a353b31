// govc for vcrypt-harness's audit bench: govc's own main.go (govmomi v0.56.0 govc/main.go imports every
// command package and calls cli.Run), with only the commands the bench runs. Built by bench/govc_build.py.
package main

import (
	"os"

	"github.com/vmware/govmomi/cli"
	_ "github.com/vmware/govmomi/cli/about"
	_ "github.com/vmware/govmomi/cli/object"
	_ "github.com/vmware/govmomi/cli/kms"
	_ "github.com/vmware/govmomi/cli/alarm"
	_ "github.com/vmware/govmomi/cli/role"
	_ "github.com/vmware/govmomi/cli/permissions"
	_ "github.com/vmware/govmomi/cli/session"
)

func main() {
	os.Exit(cli.Run(os.Args[1:]))
}
