#pragma once
// Every file hamlet writes (run files, weights, checkpoints, CSV, Markdown/JSON tables, IDX) goes through this
// header, so that bad output paths are refused in one place, before any work (docs/file_formats.md, "Output
// paths").
//
// Rules for an output path P:
// - P may not exist (it is created) or may be a regular file (it is replaced, atomically).
// - P is refused when it exists as anything else: a directory, a character or block device (/dev/null,
//   /dev/full), a FIFO or a socket. Replacing such a node with a regular file would break the system or the user's
//   pipeline, and writing into it would lose the output.
// - P is refused when it is a symbolic link, whatever it points to: a rename would replace the link itself, and
//   writing through it would put the file somewhere the command line does not say. Give the target's path.
// - P's directory must exist.
// Writes go to "P.tmp-<pid>" and are renamed to P only when complete; every failure path removes the temporary.
#include <functional>
#include <string>

namespace hamlet {

// Throws hamlet::Error naming `path` and what it is when `path` is not a valid output path (rules above).
// `what` names the file in the message ("--out", "checkpoint", ...).
void check_output_path(const std::string& path, const std::string& what = "output file");

// "<path>.tmp-<pid>": where a file is written before it is renamed to `path`.
std::string temporary_path_for(const std::string& path);

// Renames the finished temporary file `temp` to `path` (checking `path` again first); removes `temp` and throws
// hamlet::Error naming `path` on failure.
void commit_temporary(const std::string& temp, const std::string& path, const std::string& what = "output file");

// Checks `path`, calls write(temp) to produce the file at the temporary path, and commits it. Any exception from
// `write` removes the temporary file and propagates.
void write_file_atomically(const std::string& path, const std::function<void(const std::string& temp)>& write,
                           const std::string& what = "output file");

// write_file_atomically for a text.
void write_text_atomically(const std::string& path, const std::string& text, const std::string& what = "output file");

}  // namespace hamlet
