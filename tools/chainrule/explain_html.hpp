// chainrule explain --html: the network drawn as in the tutorial, every neuron with its
// weighted sum and activation, every weight and bias with its gradient; hovering or clicking a
// parameter highlights its chain through the network and shows the factors, their product and
// the finite difference (the numbers of explain --json). Several samples (the tutorial's four
// people) are stepped through with buttons or a slider.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "lang.hpp"

namespace chainrule::cli {

struct DiagramSample {
  std::string label;           ///< button text: "youge", "row 3"
  nlohmann::json explanation;  ///< as explain --json prints it
};

/// The page. `start`: the sample shown first. `about`: a line on the weights used.
std::string explain_html(Lang lang, const std::vector<DiagramSample>& samples, std::size_t start,
                         const std::string& about);

}  // namespace chainrule::cli
