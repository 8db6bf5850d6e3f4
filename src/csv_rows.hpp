// Internal: the CSV reader's fast path (csv_rows.cpp): data rows read straight from the text as
// clean numbers, in parallel spans for a large file, giving exactly what one pass in order gives.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>
#include <vector>

#include "chainrule/buffer.hpp"
#include "chainrule/threads.hpp"

namespace chainrule::detail {

/// A field the fast path did not read as a clean number, typed later in row order.
struct Other {
  std::size_t row, col;
  std::string_view text;
};

/// Data rows as read so far: each column's values (NaN where a field is not a clean number), the
/// fields that are not, and the line of each row.
struct Rows {
  std::vector<PagedVector<double>> values;
  std::vector<Other> others;
  std::vector<std::size_t> lines;
};

/// Room for as many rows as the first one's length suggests in `bytes` of text, plus 10%.
void reserve_rows(Rows& out, std::size_t first_row_bytes, std::size_t bytes);

/// Reads data rows from `pos` (the start of line `line`, which follows along) until `stop` (the
/// end of the text or the start of a line) or the first row it cannot read on its own: a quote, a
/// line ending it does not know, the wrong number of fields. Returns where it stopped. Each field
/// is read as a clean number straight from the text, ending at a delimiter or the end of the row;
/// any other field is kept as a view. Most numeric CSV never needs more, and nothing is copied.
/// `reserve_bytes`: how much text the rows of `out` are expected to come from.
std::size_t fast_rows(std::string_view text, char delim, std::size_t width, std::size_t pos,
                      std::size_t stop, std::size_t reserve_bytes, std::size_t& line, Rows& out);

/// The data rows from `pos` (line `line`) to the end, cut into `threads` spans (of at least
/// `min_span` bytes) at line starts and read by fast_rows on as many threads; `out` gets them in
/// file order, exactly as one fast_rows over the whole text would give them. False when a span
/// holds a row fast_rows cannot read (or a quoted field that crosses a cut): the caller then reads
/// the rows in order, and reports any error as it would have.
bool parallel_rows(std::string_view text, char delim, std::size_t width, std::size_t pos,
                   std::size_t line, int threads, std::size_t min_span, Rows& out);

class RangeFile;

/// Where block_rows reads and what it accepts.
struct BlockRows {
  std::size_t start = 0, line = 1;    ///< the first data row's byte and line
  std::size_t end = std::size_t(-1);  ///< where the rows end (a line start; beyond: the file's)
  std::size_t width = 0;              ///< fields a row
  char delimiter = ',';
  int threads = 1;
  std::size_t block_bytes = 0;     ///< text read at a time (a row longer than this: false)
  std::size_t parallel_bytes = 0;  ///< a block of fewer bytes is read on one thread
  /// The one column whose fields may be text (counted in *target_labels if given); any other
  /// field that is neither a number nor missing sends the file back (false). SIZE_MAX: none.
  std::size_t target = std::size_t(-1);
  std::size_t* target_labels = nullptr;
  /// The threads that read the spans (null: block_rows starts its own for the read).
  WorkerPool* pool = nullptr;
};

/// A regular file's data rows read in blocks of whole rows through one reused buffer (so a file
/// of any size costs one block of text in memory), each block in spans on `threads` threads by
/// fast_rows. Calls f(rows, first_row, text) for each span, in file order: `rows` with absolute
/// lines, the fields that are not plain numbers parsed into its values (NaN when missing or
/// text); f may take the values. False (before or after some calls) when a row needs the
/// tokenizer (a quote, a NUL byte, the wrong number of fields, text outside `target`, a number
/// out of range, a row longer than a block) or f returns false. Throws DataError on a read error.
bool block_rows(const RangeFile& file, const BlockRows& how,
                const std::function<bool(Rows&, std::size_t, std::string_view)>& f);

}  // namespace chainrule::detail
