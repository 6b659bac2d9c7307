#pragma once
// The web inspector's parts that other programs use.
#include <string>
#include <string_view>

namespace parley::platforms {

/// Lays out a DOT graph (e.g. render_diagram(..., diagram_format::dot)) with Graphviz's `dot`
/// and returns it as an SVG document. Any thread (Graphviz is not thread-safe; calls are
/// serialised). @throws std::runtime_error naming the problem when the text is not DOT.
std::string dot_to_svg(std::string_view dot);

}  // namespace parley::platforms
