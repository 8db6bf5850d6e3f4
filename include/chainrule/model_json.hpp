// The JSON forms of a model's metadata (model.hpp), for programs that use nlohmann-json (the
// library itself does not require its users to): one to_json and one from_json per struct. The
// form is the one model files store (docs/model-format.md): keys sorted, names as to_string
// gives them. from_json throws nlohmann::json::exception on a wrong type and ConfigError on an
// unknown name; keys it does not find keep their defaults.
#pragma once

#include <nlohmann/json.hpp>

#include "chainrule/model.hpp"

namespace chainrule {

void to_json(nlohmann::json& j, const TrainingSettings& s);
void from_json(const nlohmann::json& j, TrainingSettings& s);
void to_json(nlohmann::json& j, const SplitMetrics& m);
void from_json(const nlohmann::json& j, SplitMetrics& m);
void to_json(nlohmann::json& j, const ModelMetrics& m);
void from_json(const nlohmann::json& j, ModelMetrics& m);
/// `seconds` is written only when it is not 0 (a model's history has none).
void to_json(nlohmann::json& j, const EpochReport& e);
void from_json(const nlohmann::json& j, EpochReport& e);
void from_json(const nlohmann::json& j, ModelMetrics& m);

/// A metadata entry of a model file: the struct's JSON, or {} when it is empty.
template <class T>
nlohmann::json metadata_json(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json::object();
}
/// Inverse of metadata_json: {} is empty.
template <class T>
std::optional<T> metadata_from(const nlohmann::json& j) {
  if (j.is_object() && j.empty()) return std::nullopt;
  return j.get<T>();
}

}  // namespace chainrule
