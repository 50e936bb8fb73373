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
	// Pod: the helper runs the command in this process's root, in a
	// private mount (and maybe network) namespace only; no root set-up.
	Pod      bool      `json:"pod,omitempty"`
	Root     string    `json:"root"`
	Proc     string    `json:"proc,omitempty"`
	Sys      string    `json:"sys,omitempty"`
	Dev      string    `json:"dev,omitempty"`
	DevFiles []devFile `json:"devFiles,omitempty"`
	// Stage is a host directory the helper covers with a private tmpfs
	// that holds Files and the upper layers of Discard mounts.
	Stage    string       `json:"stage"`
	Files    []stagedFile `json:"files,omitempty"`
	Mounts   []Mount      `json:"mounts,omitempty"` // Source and Target are host paths here
	Tmpfs    []Tmpfs      `json:"tmpfs,omitempty"`  // Target is a host path here
	NewNet   bool         `json:"newNet,omitempty"`
	Hostname string       `json:"hostname"`
	Args     []string     `json:"args"`
	Env      []string     `json:"env"`
	Dir      string       `json:"dir"` // image path
	UID      uint32       `json:"uid"`
	GID      uint32       `json:"gid"`
	Groups   []uint32     `json:"groups,omitempty"`

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

// stagedFile is a provided file the helper writes into its stage tmpfs and
// bind-mounts onto Target, a prepared mount point (a host path).
type stagedFile struct {
	Target string `json:"target"`
	Data   []byte `json:"data"`
	Mode   uint32 `json:"mode"`
	UID    uint32 `json:"uid"`
	GID    uint32 `json:"gid"`
	// ReadOnly binds the file read-only (secrets).
	ReadOnly bool `json:"readOnly,omitempty"`
}
