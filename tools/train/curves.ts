/** Training-curve picture (SVG, no dependencies): loss per step, and eval metric per epoch. */

/** One point of a series. */
export interface Pt {
  x: number;
  y: number;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

function panel(
  title: string,
  series: { name: string; color: string; pts: Pt[] }[],
  ox: number,
  w: number,
  h: number,
  xLabel: string,
): string {
  const all = series.flatMap((s) => s.pts).filter((p) => Number.isFinite(p.y));
  if (!all.length) return "";
  const x0 = Math.min(...all.map((p) => p.x)), x1 = Math.max(...all.map((p) => p.x), x0 + 1e-9);
  let y0 = Math.min(...all.map((p) => p.y)), y1 = Math.max(...all.map((p) => p.y));
  if (y1 - y0 < 1e-9) y1 = y0 + 1;
  const pad = (y1 - y0) * 0.05;
  y0 = y0 >= 0 ? Math.max(0, y0 - pad) : y0 - pad; // non-negative series keep a 0 floor
  y1 += pad;
  const L = ox + 55, T = 30, W = w - 70, H = h - 75;
  const sx = (x: number) => L + ((x - x0) / (x1 - x0)) * W;
  const sy = (y: number) => T + H - ((y - y0) / (y1 - y0)) * H;
  let s = `<text x="${ox + w / 2}" y="18" text-anchor="middle" font-size="14">${esc(title)}</text>`;
  s += `<rect x="${L}" y="${T}" width="${W}" height="${H}" fill="none" stroke="#999"/>`;
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4, xv = x0 + ((x1 - x0) * i) / 4;
    s += `<text x="${L - 5}" y="${sy(yv) + 4}" text-anchor="end" font-size="10">${yv.toPrecision(3)}</text>`;
    s += `<line x1="${L}" x2="${L + W}" y1="${sy(yv)}" y2="${sy(yv)}" stroke="#eee"/>`;
    s += `<text x="${sx(xv)}" y="${T + H + 14}" text-anchor="middle" font-size="10">${+xv.toPrecision(
      3,
    )}</text>`;
  }
  s += `<text x="${L + W / 2}" y="${T + H + 30}" text-anchor="middle" font-size="11">${esc(xLabel)}</text>`;
  series.forEach((se, i) => {
    const pts = se.pts.filter((p) => Number.isFinite(p.y));
    if (!pts.length) return;
    s += `<polyline fill="none" stroke="${se.color}" stroke-width="1.5" points="${
      pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ")
    }"/>`;
    if (pts.length < 40) {
      for (const p of pts) s += `<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="2.5" fill="${se.color}"/>`;
    }
    s += `<text x="${L + 8}" y="${T + 14 + 13 * i}" font-size="11" fill="${se.color}">${esc(se.name)}</text>`;
  });
  return s;
}

/** Two panels side by side: training loss vs epoch, and eval metric(s) vs epoch. */
export function curvesSvg(
  title: string,
  loss: Pt[],
  metrics: { name: string; pts: Pt[] }[],
): string {
  const w = 480, h = 320;
  const colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
  // Smooth the step loss with a running mean so the trend is readable.
  const sm: Pt[] = [];
  let acc = 0;
  const k = Math.max(1, Math.floor(loss.length / 200));
  for (let i = 0; i < loss.length; i++) {
    acc += loss[i].y;
    if (i >= k) acc -= loss[i - k].y;
    if (i % k === 0) sm.push({ x: loss[i].x, y: acc / Math.min(i + 1, k) });
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * w}" height="${
    h + 20
  }" font-family="sans-serif">` +
    `<rect width="100%" height="100%" fill="white"/>` +
    `<text x="${w}" y="${h + 14}" text-anchor="middle" font-size="11" fill="#555">${esc(title)}</text>` +
    panel("training loss", [{ name: "loss (running mean)", color: colors[0], pts: sm }], 0, w, h, "epoch") +
    panel(
      "evaluation",
      metrics.map((m, i) => ({ name: m.name, color: colors[(i + 1) % colors.length], pts: m.pts })),
      w,
      w,
      h,
      "epoch",
    ) +
    `</svg>\n`;
}
