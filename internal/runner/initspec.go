package runner

// Markers put in argv[0] of the re-executed binary.
const (
	initMarker  = "kiln-runner-init"
	probeMarker = "kiln-runner-probe"
)

// The helper's inherited descriptors (exec.Cmd.ExtraFiles start at 3).
const (
	specFD   = 3 // JSON initSpec; kept open by the parent as a lifeline
	reportFD = 4 // set-up error text; closed empty once the command started
)

// initSpec is what the parent tells the helper, as JSON on specFD. All
// mount targets are host paths already resolved securely inside Root.
type initSpec struct {
	Root     string    `json:"root"`
	Proc     string    `json:"proc"`
	Sys      string    `json:"sys"`
	Dev      string    `json:"dev"`
	DevFiles []devFile `json:"devFiles,omitempty"`
	Binds    []bind    `json:"binds,omitempty"`
	Mounts   []Mount   `json:"mounts,omitempty"` // Source and Target are host paths here
	Hostname string    `json:"hostname"`
	Args     []string  `json:"args"`
	Env      []string  `json:"env"`
	Dir      string    `json:"dir"` // image path
	UID      uint32    `json:"uid"`
	GID      uint32    `json:"gid"`
	Groups   []uint32  `json:"groups,omitempty"`

	// MakeDir asks the helper to create Dir once the mounts are in place:
	// it lies inside a Mount, where the host side cannot create it.
	MakeDir bool `json:"makeDir,omitempty"`
}

// devFile is a provided file written into the private /dev tmpfs.
type devFile struct {
	Rel  string `json:"rel"` // path below /dev
	Data []byte `json:"data"`
	Mode uint32 `json:"mode"`
}

// bind is a host file bind-mounted onto a prepared mount point.
type bind struct {
	Source string `json:"source"`
	Target string `json:"target"`
}
