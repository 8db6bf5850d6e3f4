// IDX files (the MNIST family), plain, gzip or a pipe: the header first, its declared size checked
// against the input limit before the data is read, then exactly that much data.
#include "chainrule/dataset.hpp"
#include "chainrule/table.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "chainrule/error.hpp"
#include "chainrule/file_io.hpp"
#include "prefault.hpp"

namespace chainrule {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw DataError(where + ": " + what);
}

// More pixels per image than this is a broken file, not a table (as kMaxColumns for CSV).
constexpr std::size_t kMaxColumns = 1'000'000;

}  // namespace

namespace {

struct Idx {
  std::vector<std::size_t> dims;
  Bytes bytes;  // the data after the header
  std::size_t size() const { return bytes.size(); }
  const unsigned char* data() const { return reinterpret_cast<const unsigned char*>(bytes.data()); }
};

// An IDX header: the dimensions and the bytes of data they multiply to, checked against the
// input limit before any data is read.
struct IdxHead {
  std::vector<std::size_t> dims;
  std::size_t total = 0;
};

IdxHead read_idx_head(InputFile& in, const std::string& path, std::uint64_t max_bytes) {
  IdxHead h;
  unsigned char head[4 + 4 * 3] = {};
  const std::size_t got = in.read(reinterpret_cast<char*>(head), 4);
  if (got < 4 || head[0] != 0 || head[1] != 0)
    fail(path + ": byte 0", "not an IDX file: expected the magic bytes 00 00 <type> <dims>");
  if (head[2] != 0x08)
    fail(path + ": byte 2", "unsupported IDX element type 0x" + std::to_string(head[2]) +
                                ": expected 0x08 (unsigned bytes)");
  const std::size_t ndim = head[3];
  if (ndim < 1 || ndim > 3)
    fail(path + ": byte 3", "expected 1 to 3 dimensions, found " + std::to_string(ndim));
  if (in.read(reinterpret_cast<char*>(head + 4), 4 * ndim) < 4 * ndim)
    fail(path, "the IDX header is cut short");
  h.total = 1;
  for (std::size_t d = 0; d < ndim; ++d) {
    const unsigned char* p = head + 4 + 4 * d;
    const std::size_t n =
        (std::size_t(p[0]) << 24) | (std::size_t(p[1]) << 16) | (std::size_t(p[2]) << 8) | p[3];
    h.dims.push_back(n);
    if (__builtin_mul_overflow(h.total, n, &h.total))
      fail(path, "the header's dimensions multiply to more bytes than any file holds");
  }
  if (max_bytes == 0) max_bytes = default_max_input_bytes();
  if (h.total > max_bytes)
    throw LimitError(path + ": the header promises " + format_bytes(h.total) +
                         " of data, more than the input size limit of " + format_bytes(max_bytes),
                     "max_input_bytes");
  return h;
}

// After `actual` bytes of data: what is left of the stream is counted to its end, and the whole
// must be what the header promised.
void finish_idx(InputFile& in, const std::string& path, std::size_t actual, std::size_t total) {
  char buf[1 << 16];
  for (std::size_t n; (n = in.read(buf, sizeof buf)) > 0 && actual < (std::size_t(1) << 40);)
    actual += n;
  in.check_unchanged();
  if (actual != total) {
    fail(path, "the header promises " + std::to_string(total) + " bytes of data, the file holds " +
                   std::to_string(actual));
  }
}

// The header, then the data it promises. With parts > 1, only records [n·part/parts,
// n·(part+1)/parts) of the n the first dimension counts are kept (the others are read past), and
// dims[0] is their count.
Idx read_idx_file(const std::string& path, std::uint64_t max_bytes, int part = 0, int parts = 1) {
  InputFile in(path);
  IdxHead h = read_idx_head(in, path, max_bytes);
  const std::size_t total = h.total;
  Idx idx;
  idx.dims = std::move(h.dims);
  std::size_t actual = 0;
  if (parts > 1) {
    char buf[1 << 16];
    const std::size_t n = idx.dims[0], record = n ? total / n : 0;
    const std::size_t first = n * std::size_t(part) / std::size_t(parts),
                      last = n * std::size_t(part + 1) / std::size_t(parts);
    for (std::size_t k; actual < first * record &&
                        (k = in.read(buf, std::min(sizeof buf, first * record - actual))) > 0;)
      actual += k;
    if (actual == first * record) {
      idx.bytes = in.read_up_to((last - first) * record);
      actual += idx.size();
    }
    idx.dims[0] = last - first;
  } else {
    idx.bytes = in.read_up_to(total);
    actual = idx.size();
  }
  finish_idx(in, path, actual, total);
  return idx;
}

}  // namespace

namespace {

// Images count and pixels per image of an IDX images file, checked.
std::pair<std::size_t, std::size_t> image_shape(const std::vector<std::size_t>& dims,
                                                const std::string& path, bool part = false) {
  if (dims.size() < 2) fail(path, "expected images (N × rows × cols), found a 1-dimensional file");
  const std::size_t n = dims[0];
  const std::size_t features = dims.size() == 3 ? dims[1] * dims[2] : dims[1];
  if ((n == 0 && !part) ||
      features == 0)  // an empty file could otherwise claim billions of columns
    fail(path, "the header promises " + std::to_string(n) + " images of " +
                   std::to_string(features) + " pixels: expected at least one of at least one");
  return {n, features};
}

}  // namespace

IdxImages read_idx_pixels(const std::string& path, std::uint64_t max_bytes, int part, int parts) {
  Idx img = read_idx_file(path, max_bytes, part, parts);
  const auto [n, features] = image_shape(img.dims, path, parts > 1);
  if (features > kMaxColumns)
    throw LimitError(path + ": images of " + std::to_string(features) +
                         " pixels: expected at most " + std::to_string(kMaxColumns),
                     "max_columns");
  IdxImages out;
  out.pixels = std::move(img.bytes);
  out.count = Index(n);
  out.features = Index(features);
  return out;
}

template <class T>
Batch<T> read_idx_images(const std::string& path, double scale, std::uint64_t max_bytes) {
  // The data goes from the stream into the matrix a block at a time: no buffer of the whole
  // file's bytes beside the matrix (a quarter of its size more at the peak, and its pages' first
  // writes), and no large buffer freed just before training. Freeing one (munmap) drops the
  // process's page mappings on some virtual machines, and the first pass over the matrix after
  // that took 220 ms of W2's 430 (docs/design-notes.md, "Large buffers").
  InputFile in(path);
  const IdxHead h = read_idx_head(in, path, max_bytes);
  const auto [n, features] = image_shape(h.dims, path);
  if (const std::uint64_t need = sizeof(T) * std::uint64_t(h.total); need > available_memory())
    throw LimitError(path + ": a matrix of these images needs " + format_bytes(need) +
                         ", more than the " + format_bytes(available_memory()) +
                         " of memory available",
                     "memory");
  Batch<T> X(static_cast<Index>(n), static_cast<Index>(features));
  detail::advise_huge_pages(X.data(), X.data() + X.size());
  T lut[256];  // the same product for every pixel value
  for (int v = 0; v < 256; ++v)
    lut[v] = T(double(v) * scale);
  unsigned char buf[1 << 16];
  std::size_t actual = 0;
  while (actual < h.total) {
    const std::size_t got =
        in.read(reinterpret_cast<char*>(buf), std::min(sizeof buf, h.total - actual));
    T* out = X.data() + actual;
    for (std::size_t i = 0; i < got; ++i)
      out[i] = lut[buf[i]];
    actual += got;
    if (got == 0) break;
  }
  finish_idx(in, path, actual, h.total);
  return X;
}

template Batch<float> read_idx_images<float>(const std::string&, double, std::uint64_t);
template Batch<double> read_idx_images<double>(const std::string&, double, std::uint64_t);

std::vector<int> read_idx_labels(const std::string& path, std::uint64_t max_bytes, int part,
                                 int parts) {
  const Idx lab = read_idx_file(path, max_bytes, part, parts);
  if (lab.dims.size() != 1) fail(path, "expected labels (a 1-dimensional IDX file)");
  std::vector<int> y(lab.dims[0]);
  for (std::size_t r = 0; r < y.size(); ++r)
    y[r] = static_cast<unsigned char>(lab.data()[r]);
  return y;
}

Table read_idx(const std::string& images, const std::string& labels, std::uint64_t max_bytes) {
  const Idx img = read_idx_file(images, max_bytes);
  const auto [n, features] = image_shape(img.dims, images);
  // A table holds a double per pixel (8 bytes per byte read) and a column per pixel.
  if (features > kMaxColumns)
    throw LimitError(images + ": images of " + std::to_string(features) +
                         " pixels: expected at most " + std::to_string(kMaxColumns),
                     "max_columns");
  if (const std::uint64_t need = 8 * std::uint64_t(img.size()) + 96 * std::uint64_t(features);
      need > available_memory())
    throw LimitError(images + ": a table of these images needs " + format_bytes(need) +
                         ", more than the " + format_bytes(available_memory()) +
                         " of memory available",
                     "memory");
  Table t;
  t.source = images;
  t.columns.resize(features + (labels.empty() ? 0 : 1));
  for (std::size_t f = 0; f < features; ++f) {
    Column& c = t.columns[f];
    c.name = "px" + std::to_string(f);
    c.field = f + 1;
    c.numbers.resize(n);
  }
  const auto* data = reinterpret_cast<const unsigned char*>(img.data());
  for (std::size_t r = 0; r < n; ++r)
    for (std::size_t f = 0; f < features; ++f)
      t.columns[f].numbers[r] = data[r * features + f];
  if (!labels.empty()) {
    const std::vector<int> y = read_idx_labels(labels, max_bytes);
    if (y.size() != n)
      fail(labels, "holds " + std::to_string(y.size()) + " labels for " + std::to_string(n) +
                       " images in " + images);
    Column& c = t.columns.back();
    c.name = "label";
    c.field = features + 1;
    c.numbers.assign(y.begin(), y.end());
  }
  return t;
}

}  // namespace chainrule
