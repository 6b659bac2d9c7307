// DOT to SVG with Graphviz's C library (libgvc): parse, lay out with `dot`, render "svg".
#include <parley/platforms/inspector.hpp>

#include <graphviz/gvc.h>

#include <memory>
#include <mutex>
#include <stdexcept>

namespace parley::platforms {

namespace {

// One context for the process: loading the plugins is the slow part. Graphviz keeps global
// state (its error buffer, the graph library's dictionaries), so every use holds the lock.
std::mutex gv_mutex;

GVC_t* context() {
  static GVC_t* const gvc = [] {
    agseterr(AGMAX);  // no error text on stderr: failures are reported by the caller
    return gvContext();
  }();
  return gvc;
}

struct graph_closer {
  void operator()(Agraph_t* g) const { agclose(g); }
};

}  // namespace

std::string dot_to_svg(std::string_view dot) {
  std::lock_guard lock(gv_mutex);
  GVC_t* gvc = context();
  if (!gvc) throw std::runtime_error("graphviz: cannot create a context (is libgvc installed?)");
  const std::string text(dot);
  std::unique_ptr<Agraph_t, graph_closer> g(agmemread(text.c_str()));
  if (!g) {
    const char* why = aglasterr();
    throw std::runtime_error(std::string("graphviz: the diagram is not valid DOT") +
                             (why && *why ? std::string(": ") + why : std::string()));
  }
  if (gvLayout(gvc, g.get(), "dot") != 0)
    throw std::runtime_error(
        "graphviz: the 'dot' layout is not available (the Graphviz plugins are missing; "
        "reinstall libgvc6)");
  char* data = nullptr;
  unsigned int size = 0;
  const int rc = gvRenderData(gvc, g.get(), "svg", &data, &size);
  std::string svg = rc == 0 && data ? std::string(data, size) : std::string();
  if (data) gvFreeRenderData(data);
  gvFreeLayout(gvc, g.get());
  if (rc != 0) throw std::runtime_error("graphviz: cannot render SVG (the core plugin is missing)");
  return svg;
}

}  // namespace parley::platforms
