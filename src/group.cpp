#include "chainrule/group.hpp"

#include <array>

namespace chainrule {

void Group::agree(std::exception_ptr local) const {
  // The lowest rank with an error of its own speaks: max over 2·size - rank of those. A PeerError
  // (a phase agreed on before) counts as a failure with nothing to say (1).
  bool peer = false;
  if (local) try {
      std::rethrow_exception(local);
    } catch (const PeerError&) {
      peer = true;
    } catch (...) {
    }
  std::array<std::int64_t, 1> first{!local ? 0 : peer ? 1 : std::int64_t(2 * size() - rank())};
  control_max(first);
  if (first[0] == 0) return;
  if (!peer && local && 2 * size() - first[0] == rank()) std::rethrow_exception(local);
  throw PeerError();
}

std::pair<std::uint64_t, std::uint64_t> Group::offset_of(std::uint64_t mine) const {
  const std::vector<std::string> all = all_gather(std::to_string(mine));
  std::uint64_t before = 0, total = 0;
  for (int r = 0; r < int(all.size()); ++r) {
    const std::uint64_t n = std::stoull(all[std::size_t(r)]);
    if (r < rank()) before += n;
    total += n;
  }
  return {before, total};
}

}  // namespace chainrule
