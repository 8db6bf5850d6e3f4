// Files in and out, for hostile inputs: one open and one pass per input (pipes and gzip streams
// work; a file that changes while it is read is an error, never a crash), reads bounded before
// they allocate, and writes that never replace anything but a regular file, through a temporary
// file created exclusively (no planted symlink is followed) and renamed into place.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace chainrule {

/// Memory this process can still take: /proc/meminfo's MemAvailable, lowered by the address-space
/// and data limits (ulimit -v, -d) and a cgroup's memory.max where those are set.
std::uint64_t available_memory();

/// The default bound on the bytes one input file may hold once decompressed: half of
/// available_memory() (the other half is for what is parsed out of them).
std::uint64_t default_max_input_bytes();

/// "1.5 GiB", "640 KiB", "12 bytes".
std::string format_bytes(std::uint64_t bytes);

/// "4G", "512M", "64k", "1000000" (bytes; suffixes are powers of 1024). Throws ConfigError.
std::uint64_t parse_bytes(std::string_view text);

/// A whole file in memory: bytes that are never zero-filled first.
class Bytes {
 public:
  Bytes() = default;
  std::string_view view() const { return {data_.get(), size_}; }
  const char* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  friend class InputFile;
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data_;
  std::size_t size_ = 0;
};

/// An input opened once and read front to back: a regular file, a pipe, /dev/stdin or a character
/// device; gzip-compressed content is decompressed on the fly (detected from the bytes). A
/// directory or a block device is refused. Errors are DataError naming the path.
class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// Reads up to `n` bytes into `dst`; fewer only at the end of the data. Throws DataError on a
  /// read error or damaged compressed data.
  std::size_t read(char* dst, std::size_t n);
  /// Reads up to `n` bytes into a new buffer of that size (checked by the caller against a limit).
  Bytes read_up_to(std::uint64_t n);
  /// Reads everything that is left, at most `max_bytes` (0: default_max_input_bytes()); more is a
  /// DataError naming the limit. With `stop_at_nul`, reading stops after the first block that
  /// holds a NUL byte (text readers report it; /dev/zero is not read to the limit). With
  /// `threads` > 1, a large uncompressed regular file is read in as many byte ranges at once
  /// (the same bytes; a file of NUL bytes is then read whole, as it is finite).
  Bytes read_all(std::uint64_t max_bytes = 0, bool stop_at_nul = false, int threads = 1);
  /// For a regular file: throws DataError when its size or modification time changed since it
  /// was opened (it was rewritten or truncated while being read).
  void check_unchanged() const;

  const std::string& path() const { return path_; }
  /// Whether it is a regular file, and then its size when opened (compressed or not).
  bool regular() const { return regular_; }
  std::uint64_t size() const { return size_; }

 private:
  // Grows b's buffer to `bytes` (its data kept); a LimitError when memory runs out.
  std::size_t reserve(Bytes& b, std::uint64_t bytes) const;

  std::string path_;
  int fd_ = -1;
  void* gz_ = nullptr;  // gzFile
  bool regular_ = false;
  std::uint64_t size_ = 0;
  std::int64_t mtime_ns_ = 0;
};

/// Reads a whole file (see InputFile::read_all). Throws DataError.
Bytes read_file(const std::string& path, std::uint64_t max_bytes = 0);

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, created
/// exclusively with an unpredictable name, written, flushed to disk and renamed over `path`. A
/// symlink at `path` is followed (the user named it); anything at `path` that is not a regular
/// file (a device, a pipe, a directory) is refused, never replaced. Throws Error.
void write_file_atomically(const std::string& path, std::string_view bytes);

/// Writes an output the user named: a regular (or new) file atomically as above, a character
/// device or a pipe (/dev/stdout, a FIFO) by opening and writing it. Every write is checked.
void write_output(const std::string& path, std::string_view bytes);

/// Opens `path` for a stream of writes (a log): created or truncated (appended to with `append`)
/// when regular or new, opened as it is when a character device or a pipe; a directory or block
/// device is refused. Returns the file descriptor. Throws Error.
int open_output_stream(const std::string& path, bool append);

/// Writes all of `bytes` to `fd` (retrying short writes). Throws Error naming `what`.
void write_all(int fd, std::string_view bytes, const std::string& what);

/// Whether `a` and `b` name the same existing file (after symlinks, hard links included).
bool same_file(const std::string& a, const std::string& b);

/// Checks, before a long run, that `path` can be written later: its directory exists and is
/// writable, and nothing but a regular file (or a device or pipe when `stream_ok`) is there.
/// `role` names the option in the message ("the model file"). Throws Error.
void check_writable(const std::string& path, const std::string& role, bool stream_ok = false);

}  // namespace chainrule
