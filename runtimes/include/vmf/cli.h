// The vmf_run command line as a function, so a host without a shell (the iOS app, launched with
// arguments by vmf-bench's ios backend) runs exactly what vmf_run runs.
#pragma once

namespace vmf {

// Parses argv like vmf_run and runs it; returns the process exit code (0 ok, 1 error, 2 usage).
// Relative paths resolve against the current directory.
int run_cli(int argc, char** argv);

}  // namespace vmf
