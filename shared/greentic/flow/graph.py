"""A flow as a graph: Mermaid, Graphviz DOT, or a self-contained SVG (no Graphviz needed)."""

from collections import deque
from html import escape

from greentic.flow.model import Flow, Route

END, REPLY = "__end__", "__reply__"


def edges(flow: Flow) -> list[tuple[str, str, str]]:
    """(from, to, label) for every route; `out` goes to END, `reply` to REPLY."""
    found = []
    for node in flow.nodes.values():
        if not node.routes:
            found.append((node.id, END, ""))
        for route in node.routes:
            target = REPLY if route.reply else END if route.out or route.to is None else route.to
            found.append((node.id, target, _label(route)))
    return found


def _label(route: Route) -> str:
    parts = [f"status={route.status}"] if route.status else []
    if route.condition:
        parts.append(route.condition)
    if route.on_message:
        parts.append("on message")
    return " / ".join(parts)


def _terminal(name: str) -> str:
    return "end" if name == END else "reply"


def to_mermaid(flow: Flow) -> str:
    lines = ["flowchart TD", f"  __start__((start)) --> {flow.start}"]
    for node in flow.nodes.values():
        lines.append(f'  {node.id}["{node.id}<br/><small>{node.op}</small>"]')
    for source, target, label in edges(flow):
        shape = f"{target}([{_terminal(target)}])" if target in (END, REPLY) else target
        arrow = f" -->|{label.replace('|', '/')}| " if label else " --> "
        lines.append(f"  {source}{arrow}{shape}")
    return "\n".join(lines) + "\n"


def to_dot(flow: Flow) -> str:
    lines = [f'digraph "{flow.id}" {{', "  rankdir=TB; node [shape=box, style=rounded];",
             '  __start__ [shape=circle, label="start"];', f'  __start__ -> "{flow.start}";',
             f'  {END} [shape=oval, label="end"]; {REPLY} [shape=oval, label="reply"];']
    for node in flow.nodes.values():
        lines.append(f'  "{node.id}" [label="{node.id}\\n{node.op}"];')
    for source, target, label in edges(flow):
        target_ref = target if target in (END, REPLY) else f'"{target}"'
        attrs = f' [label="{label}"]' if label else ""
        lines.append(f'  "{source}" -> {target_ref}{attrs};')
    return "\n".join(lines) + "\n}\n"


def to_svg(flow: Flow) -> str:
    """Nodes in layers by distance from start, edges as labelled arrows."""
    links = edges(flow)
    depth = {flow.start: 0}
    queue = deque([flow.start])
    while queue:
        current = queue.popleft()
        for source, target, _ in links:
            if source == current and target not in depth:
                depth[target] = depth[current] + 1
                queue.append(target)
    for name in [*flow.nodes, END, REPLY]:
        depth.setdefault(name, max(depth.values()) + 1)
    used = {t for _, t, _ in links} | set(flow.nodes)
    layers: dict[int, list[str]] = {}
    for name in [n for n in depth if n in used]:
        layers.setdefault(depth[name], []).append(name)
    width, height, gap_x, gap_y = 190, 46, 40, 70
    canvas_w = max(len(v) for v in layers.values()) * (width + gap_x) + gap_x
    xy = {}
    for level, names in sorted(layers.items()):
        offset = (canvas_w - len(names) * (width + gap_x) + gap_x) / 2
        for index, name in enumerate(names):
            xy[name] = (offset + index * (width + gap_x), 30 + level * (height + gap_y))
    canvas_h = max(y for _, y in xy.values()) + height + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{canvas_w:.0f}" '
           f'height="{canvas_h:.0f}" font-family="sans-serif" font-size="12">',
           "<defs><marker id='a' markerWidth='10' markerHeight='7' refX='10' refY='3.5' "
           "orient='auto'><polygon points='0 0, 10 3.5, 0 7' fill='#555'/></marker></defs>",
           f"<title>{escape(flow.id)}</title>"]
    for source, target, label in links:
        (x1, y1), (x2, y2) = xy[source], xy[target]
        sx, sy, tx = x1 + width / 2, y1 + height, x2 + width / 2
        ty = y2 if y2 > y1 else y2 + height
        out.append(f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{tx:.0f}" y2="{ty:.0f}" '
                   'stroke="#555" marker-end="url(#a)"/>')
        if label:
            out.append(f'<text x="{(sx + tx) / 2 + 4:.0f}" y="{(sy + ty) / 2:.0f}" '
                       f'fill="#1b5e20">{escape(label)}</text>')
    for name, (x, y) in xy.items():
        terminal = name in (END, REPLY)
        title = _terminal(name) if terminal else name
        subtitle = "" if terminal else flow.nodes[name].op
        fill = "#eeeeee" if terminal else ("#c8e6c9" if name == flow.start else "#ffffff")
        out.append(f'<rect x="{x:.0f}" y="{y:.0f}" width="{width}" height="{height}" '
                   f'rx="{20 if terminal else 8}" fill="{fill}" stroke="#1b5e20"/>')
        out.append(f'<text x="{x + width / 2:.0f}" y="{y + 19:.0f}" text-anchor="middle" '
                   f'font-weight="bold">{escape(title)}</text>')
        if subtitle:
            out.append(f'<text x="{x + width / 2:.0f}" y="{y + 36:.0f}" text-anchor="middle" '
                       f'fill="#555">{escape(subtitle)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
