// file_io: one-pass reads of pipes and gzip streams, bounded reads, and writes that never follow
// a planted link or replace a device.
#include "chainrule/file_io.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "error_of.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "chainrule/error.hpp"

namespace {

using namespace chainrule;
namespace fs = std::filesystem;

struct TempDir {
  fs::path dir;
  TempDir() {
    dir = fs::path(::testing::TempDir()) /
          ("file_io_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() { fs::remove_all(dir); }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
  static inline int counter = 0;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

TEST(FileIo, ReadsPlainGzipAndPipesWhole) {
  TempDir t;
  std::string text;
  for (int i = 0; i < 100000; ++i)
    text += std::to_string(i) + ",x\n";
  spit(t / "plain.csv", text);
  EXPECT_EQ(read_file(t / "plain.csv").view(), text);
  gzFile gz = gzopen((t / "z.csv.gz").c_str(), "wb");
  gzwrite(gz, text.data(), unsigned(text.size()));
  gzclose(gz);
  EXPECT_EQ(read_file(t / "z.csv.gz").view(), text);
  // A FIFO is read in one pass, in full, while another thread writes it in small pieces.
  ASSERT_EQ(::mkfifo((t / "fifo").c_str(), 0600), 0);
  std::thread writer([&] {
    const int fd = ::open((t / "fifo").c_str(), O_WRONLY);
    for (std::size_t i = 0; i < text.size(); i += 4093)
      ASSERT_GT(::write(fd, text.data() + i, std::min<std::size_t>(4093, text.size() - i)), 0);
    ::close(fd);
  });
  const Bytes piped = read_file(t / "fifo");
  writer.join();
  EXPECT_EQ(piped.view(), text);
}

// A large plain file read on several threads (byte ranges, pread) gives the bytes one read in
// order gives, with any number of threads and a size that does not divide evenly; a gzip file
// of the same size is decompressed in order as before; the size limit still holds.
TEST(FileIo, LargePlainFilesReadInRangesOnThreadsGiveTheSameBytes) {
  TempDir t;
  std::string text;
  std::uint64_t x = 88172645463325252ULL;
  while (text.size() < (std::size_t(17) << 20) + 12345) {  // above the 16 MiB threshold
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    text += std::to_string(x % 1000003) + (x % 7 == 0 ? "\n" : ",");
  }
  spit(t / "big.csv", text);
  for (const int threads : {1, 2, 3, 8}) {
    InputFile in(t / "big.csv");
    const Bytes b = in.read_all(0, true, threads);
    ASSERT_EQ(b.size(), text.size()) << threads;
    EXPECT_TRUE(b.view() == text) << threads;
  }
  gzFile gz = gzopen((t / "big2.csv.gz").c_str(), "wb1");
  gzwrite(gz, text.data(), unsigned(text.size()));
  gzclose(gz);
  {
    InputFile in(t / "big2.csv.gz");
    EXPECT_TRUE(in.read_all(0, true, 2).view() == text);
  }
  EXPECT_THROW(InputFile(t / "big.csv").read_all(text.size() - 1, true, 2), LimitError);
}

TEST(FileIo, ReadsAreBoundedBeforeTheyGrow) {
  TempDir t;
  spit(t / "f", std::string(5000, 'a'));
  EXPECT_EQ(read_file(t / "f", 5000).size(), 5000u);
  try {
    read_file(t / "f", 4999);
    FAIL() << "no error";
  } catch (const LimitError& e) {
    EXPECT_EQ(e.option, "max_input_bytes");
    EXPECT_NE(std::string(e.what()).find("larger than the input size limit of 4.88 KiB"),
              std::string::npos)
        << e.what();
  }
  // /dev/zero as text stops after the first block that holds a NUL byte.
  InputFile zero("/dev/zero");
  EXPECT_LE(zero.read_all(1 << 30, true).size(), std::size_t(1) << 16);
  EXPECT_NE(error_of([&] { read_file(t.dir.string()); }).find("a directory, not a data file"),
            std::string::npos);
}

// This process's address space in bytes (VmSize in /proc/self/status).
std::uint64_t address_space() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  return 0;
}

// A header that promises gigabytes over a short file (a model's data offsets, an IDX file's
// dimensions) asks for no room the file cannot fill: under a sanitizer or an allocation limit
// such a request is itself the failure (the model fuzzer found a 12 GB one). That a file which can
// hold what is asked still gets its room at once is Memory.LargeMatricesAskForHugePages's check.
TEST(FileIo, PromisesPastWhatTheFileHoldsTakeNoRoom) {
  TempDir t;
  const std::uint64_t promise = std::uint64_t(12) << 30;
  const std::string text(3 << 20, 'a');
  spit(t / "plain", text);
  gzFile gz = gzopen((t / "small.gz").c_str(), "wb");
  gzwrite(gz, text.data(), unsigned(text.size()));  // 3 MiB in a few KiB
  gzclose(gz);
  for (const std::string name : {"plain", "small.gz"}) {
    InputFile in(t / name);
    const std::uint64_t before = address_space();
    const Bytes got = in.read_up_to(promise);
    EXPECT_EQ(got.view(), text) << name;
    EXPECT_LT(address_space() - before, std::uint64_t(256) << 20) << name;
  }
}

TEST(FileIo, AtomicWriteNeverFollowsAPlantedTempLink) {
  TempDir t;
  spit(t / "victim", "precious");
  // The old predictable names: path.tmp.<pid>.
  for (int pid = ::getpid() - 5; pid < ::getpid() + 5; ++pid)
    fs::create_symlink(t / "victim", t / ("m.st.tmp." + std::to_string(pid)));
  write_file_atomically(t / "m.st", "model bytes");
  EXPECT_EQ(slurp(t / "victim"), "precious");
  EXPECT_EQ(slurp(t / "m.st"), "model bytes");
  // No temporary file is left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(t.dir))
    files += e.path().filename().string().find("m.st.tmp.") == 0 ? 0 : 1;
  EXPECT_EQ(files, 2);  // victim and m.st
}

TEST(FileIo, AtomicWriteKeepsTheModeAndFollowsTheUsersLink) {
  TempDir t;
  spit(t / "m.st", "old");
  ::chmod((t / "m.st").c_str(), 0600);
  fs::create_symlink("m.st", t / "link");
  write_file_atomically(t / "link", "new");
  EXPECT_TRUE(fs::is_symlink(t / "link"));
  EXPECT_EQ(slurp(t / "m.st"), "new");
  struct stat st {};
  ASSERT_EQ(::stat((t / "m.st").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(FileIo, WritesNeverReplaceWhatIsNotARegularFile) {
  TempDir t;
  ASSERT_EQ(::mkfifo((t / "fifo").c_str(), 0600), 0);
  EXPECT_NE(error_of([&] {
              write_file_atomically(t / "fifo", "x");
            }).find("a pipe, not a regular file: refusing to replace it"),
            std::string::npos);
  EXPECT_TRUE(fs::is_fifo(t / "fifo"));
  fs::create_directory(t / "d");
  EXPECT_NE(error_of([&] { write_file_atomically(t / "d", "x"); }).find("a directory"),
            std::string::npos);
  EXPECT_NE(error_of([&] { write_output("/dev/full", "x"); }).find("No space left on device"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              check_writable(t / "missing/m.st", "the model");
            }).find("the directory " + (t / "missing") + " does not exist"),
            std::string::npos);
  EXPECT_NO_THROW(check_writable(t / "new.st", "the model"));
  EXPECT_NO_THROW(check_writable("/dev/null", "the log", true));
  EXPECT_NE(error_of([&] {
              check_writable("/dev/null", "the model");
            }).find("a character device, not a regular file"),
            std::string::npos);
}

TEST(FileIo, SizesParseAndPrint) {
  EXPECT_EQ(parse_bytes("512M"), 512ull << 20);
  EXPECT_EQ(parse_bytes("4G"), 4ull << 30);
  EXPECT_EQ(parse_bytes("1.5k"), 1536u);
  EXPECT_EQ(parse_bytes("1000"), 1000u);
  EXPECT_EQ(parse_bytes("2GiB"), 2ull << 30);
  EXPECT_THROW(parse_bytes("-1G"), ConfigError);
  EXPECT_THROW(parse_bytes("lots"), ConfigError);
  EXPECT_THROW(parse_bytes("5X"), ConfigError);
  EXPECT_EQ(format_bytes(12), "12 bytes");
  EXPECT_EQ(format_bytes(1536), "1.50 KiB");
  EXPECT_EQ(format_bytes(3ull << 30), "3.00 GiB");
  EXPECT_GT(available_memory(), 0u);
}

}  // namespace
