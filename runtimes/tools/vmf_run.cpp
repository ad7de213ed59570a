// vmf_run: the command-line front of the vmf runtime (src/cli.cpp; `vmf_run --help`).
#include "vmf/cli.h"

int main(int argc, char** argv) { return vmf::run_cli(argc, argv); }
