// The scheduler's nodes as the site's operators see them.
import { api } from "./api.js";
import { errorBox, h, table } from "./dom.js";

const usage = (used, total, unit = "") => (total === null || total === undefined ? "–" : `${used ?? "?"} / ${total}${unit}`);

export async function renderNodes(main) {
  main.append(h("h1", null, "Nodes"));
  try {
    const nodes = await api("/nodes");
    main.append(
      table(
        ["Node", "State", "Partitions", "CPUs", "Memory", "Features", "Reason"],
        nodes.map((n) =>
          h(
            "tr",
            { "data-node": n.name },
            h("td", null, n.name),
            h("td", null, [n.state, ...(n.state_flags || [])].join("+")),
            h("td", null, (n.partitions || []).join(", ")),
            h("td", null, usage(n.cpus_alloc, n.cpus_total)),
            h("td", null, usage(n.mem_alloc_mb, n.mem_total_mb, " MB")),
            h("td", null, (n.features || []).join(", ")),
            h("td", null, n.reason || ""),
          ),
        ),
        { id: "nodes" },
      ),
    );
  } catch (error) {
    main.append(errorBox(error.message, { id: "nodes-error" }));
  }
}
