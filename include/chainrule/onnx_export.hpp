// ONNX export (the chainrule::onnx target, which links protobuf and ONNX; the core library does
// not): the model as a standard ONNX graph, opset 13, computing what predict computes,
// preprocessing included (docs/deploy.md).
#pragma once

#include <string>

#include "chainrule/model.hpp"

namespace chainrule {

/// The serialized ONNX model, checked by ONNX's checker. Throws Error.
std::string export_onnx(const Model& model);

}  // namespace chainrule
