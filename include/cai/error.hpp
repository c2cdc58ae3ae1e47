/// @file error.hpp
/// The exceptions that cai throws. Every runtime error derives from `cai::error`; its message says what
/// was wrong, where (file, line, column, field, tensor) and, where it can, what to do. Library code never
/// calls `exit()` or `abort()`.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace cai {

/// Base of every exception that cai throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file could not be opened, read or written. The message names the file and the system's reason.
class io_error : public error {
 public:
  io_error(const std::string& path, const std::string& what)
      : error(path + ": " + what), path_(path) {}
  /// The file concerned.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// Text that is not in the expected syntax (JSON, JSONL, a transcript). Carries the position, 1-based;
/// a position that does not apply is 0.
class parse_error : public error {
 public:
  parse_error(const std::string& file, std::size_t line, std::size_t column, const std::string& what)
      : error(format(file, line, column, what)), file_(file), line_(line), column_(column) {}
  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  [[nodiscard]] std::size_t line() const noexcept { return line_; }
  [[nodiscard]] std::size_t column() const noexcept { return column_; }

 private:
  static std::string format(const std::string& file, std::size_t line, std::size_t column,
                            const std::string& what) {
    std::string where = file.empty() ? std::string("<input>") : file;
    if (line != 0) where += ":" + std::to_string(line);
    if (column != 0) where += ":" + std::to_string(column);
    return where + ": " + what;
  }
  std::string file_;
  std::size_t line_;
  std::size_t column_;
};

/// Well-formed input whose content breaks a rule (a missing field, a duplicate name, a wrong shape).
class validation_error : public error {
 public:
  using error::error;
};

/// A configuration or argument that cannot work (a batch size of zero, an unknown option value).
class config_error : public error {
 public:
  using error::error;
};

/// Training met a value that is not a finite number: a NaN or infinity in a loss or a gradient. The
/// message names the phase, the step and the tensor; the step's update was not applied, and checkpoints
/// written before it are intact.
class numeric_error : public error {
 public:
  numeric_error(std::string phase, std::size_t step, std::string tensor, const std::string& what)
      : error(phase + " step " + std::to_string(step) + ": " + tensor + " " + what),
        phase_(std::move(phase)), step_(step), tensor_(std::move(tensor)) {}
  /// The trainer ("sft", "dpo", ...). @return the step (1-based) at which the value appeared.
  [[nodiscard]] const std::string& phase() const noexcept { return phase_; }
  [[nodiscard]] std::size_t step() const noexcept { return step_; }
  /// The loss or the parameter tensor whose gradient holds the value.
  [[nodiscard]] const std::string& tensor() const noexcept { return tensor_; }

 private:
  std::string phase_;
  std::size_t step_;
  std::string tensor_;
};

}  // namespace cai
