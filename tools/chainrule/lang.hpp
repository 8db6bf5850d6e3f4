// The CLI's languages: English (the default) and Simplified Chinese (--lang zh), for explain's
// text, the explain diagram and the training report. Terms as Chinese ML textbooks use them.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

namespace chainrule::cli {

enum class Lang { en, zh };

/// "en" or "zh"; anything else is a ConfigError naming both.
Lang parse_lang(std::string_view s);
/// The HTML lang attribute: "en" or "zh-Hans".
std::string_view html_lang(Lang l);

/// The text of `key` in `lang`; a key without a translation is returned as it is (English keys
/// are their own text), so a missing entry shows English, never nothing.
std::string tr(Lang lang, std::string_view key);

/// Registers --lang on `app`, storing into `lang`.
void add_lang_option(CLI::App* app, Lang& lang);

/// What the sign of a gradient means: `english` (the library's ParamTrace::reading) or its
/// translation.
std::string sign_reading(Lang lang, const std::string& param, double gradient,
                         const std::string& english);

}  // namespace chainrule::cli
