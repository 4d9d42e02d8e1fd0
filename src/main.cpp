// The hamlet command-line tool; everything lives in the library (hamlet/cli/app.hpp).
#include "hamlet/cli/app.hpp"

int main(int argc, char** argv) { return hamlet::cli::main(argc, argv); }
