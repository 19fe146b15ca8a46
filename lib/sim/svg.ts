/**
 * Line charts as standalone SVG text, with no dependency.
 *
 * @module
 */

/** Line style of a series. */
export type SeriesStyle = "line" | "dashed" | "dotted" | "markers";

/** One named series of points. */
export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  readonly style?: SeriesStyle;
  /** CSS colour; a palette colour by position when left out. */
  readonly color?: string;
}

/** A chart: axes, labels and series. */
export interface Plot {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Logarithmic x axis (values must be above 0). */
  readonly xLog?: boolean;
  /** Logarithmic y axis (values must be above 0). */
  readonly yLog?: boolean;
  readonly yMin?: number;
  readonly yMax?: number;
}

const WIDTH = 760;
const HEIGHT = 460;
const MARGIN = { left: 70, right: 200, top: 40, bottom: 55 };
/** Colour-blind-safe palette (Okabe and Ito, 2008). */
const PALETTE = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
  "#F0E442",
];

/**
 * Renders a plot as SVG text.
 *
 * @throws {RangeError} when a log axis gets a value of 0 or less.
 *
 * @example
 * ```ts
 * import { renderSvg } from "./svg.ts";
 * const svg = renderSvg({
 *   title: "Demo", xLabel: "x", yLabel: "y",
 *   series: [{ name: "y = x", points: [[0, 0], [1, 1]] }],
 * });
 * svg.startsWith("<svg"); // true
 * ```
 */
export function renderSvg(plot: Plot): string {
  const points = plot.series.flatMap((series) => series.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = points.map(([x]) => x);
  const ys = points.map(([, y]) => y);
  const xAxis = axis(xs, plot.xLog ?? false, undefined, undefined, plot.xLabel);
  const yAxis = axis(ys, plot.yLog ?? false, plot.yMin, plot.yMax, plot.yLabel);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (x: number) => MARGIN.left + xAxis.scale(x) * plotWidth;
  const py = (y: number) => MARGIN.top + (1 - yAxis.scale(y)) * plotHeight;

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${MARGIN.left}" y="24" font-size="15" font-weight="bold">${
      escape(plot.title)
    }</text>`,
  ];
  for (const tick of xAxis.ticks) {
    const x = px(tick).toFixed(1);
    parts.push(
      `<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${
        MARGIN.top + plotHeight
      }" stroke="#e5e5e5"/>`,
      `<text x="${x}" y="${
        MARGIN.top + plotHeight + 18
      }" text-anchor="middle">${formatTick(tick)}</text>`,
    );
  }
  for (const tick of yAxis.ticks) {
    const y = py(tick).toFixed(1);
    parts.push(
      `<line x1="${MARGIN.left}" y1="${y}" x2="${
        MARGIN.left + plotWidth
      }" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${
        MARGIN.left - 8
      }" y="${y}" text-anchor="end" dominant-baseline="middle">${
        formatTick(tick)
      }</text>`,
    );
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${
      HEIGHT - 14
    }" text-anchor="middle">${escape(plot.xLabel)}</text>`,
    `<text transform="translate(18 ${
      MARGIN.top + plotHeight / 2
    }) rotate(-90)" text-anchor="middle">${escape(plot.yLabel)}</text>`,
  );

  for (const [index, series] of plot.series.entries()) {
    const color = series.color ?? PALETTE[index % PALETTE.length]!;
    const style = series.style ?? "line";
    const visible = series.points.filter(([x, y]) =>
      Number.isFinite(x) && Number.isFinite(y)
    );
    const coords = visible.map(([x, y]) =>
      `${px(x).toFixed(1)},${py(y).toFixed(1)}`
    );
    if (style === "markers") {
      for (const coord of coords) {
        const [cx, cy] = coord.split(",");
        parts.push(`<circle cx="${cx}" cy="${cy}" r="3.5" fill="${color}"/>`);
      }
    } else if (coords.length > 0) {
      const dash = style === "dashed"
        ? ` stroke-dasharray="7 4"`
        : style === "dotted"
        ? ` stroke-dasharray="2 3"`
        : "";
      parts.push(
        `<polyline points="${
          coords.join(" ")
        }" fill="none" stroke="${color}" stroke-width="2"${dash}/>`,
      );
    }
    const legendY = MARGIN.top + 10 + index * 20;
    const legendX = MARGIN.left + plotWidth + 14;
    if (style === "markers") {
      parts.push(
        `<circle cx="${
          legendX + 12
        }" cy="${legendY}" r="3.5" fill="${color}"/>`,
      );
    } else {
      const dash = style === "dashed"
        ? ` stroke-dasharray="7 4"`
        : style === "dotted"
        ? ` stroke-dasharray="2 3"`
        : "";
      parts.push(
        `<line x1="${legendX}" y1="${legendY}" x2="${
          legendX + 24
        }" y2="${legendY}" stroke="${color}" stroke-width="2"${dash}/>`,
      );
    }
    parts.push(
      `<text x="${legendX + 30}" y="${legendY}" dominant-baseline="middle">${
        escape(series.name)
      }</text>`,
    );
  }
  parts.push("</svg>");
  return parts.join("\n") + "\n";
}

interface Axis {
  /** Maps a value to 0..1 along the axis. */
  scale(value: number): number;
  ticks: number[];
}

function axis(
  values: number[],
  log: boolean,
  fixedMin: number | undefined,
  fixedMax: number | undefined,
  label: string,
): Axis {
  if (log && values.some((value) => value <= 0)) {
    throw new RangeError(
      `Invalid value for the logarithmic axis "${label}": every value must be above 0`,
    );
  }
  let min = fixedMin ?? (values.length > 0 ? Math.min(...values) : 0);
  let max = fixedMax ?? (values.length > 0 ? Math.max(...values) : 1);
  if (log) {
    const low = Math.floor(Math.log10(min));
    const high = Math.max(low + 1, Math.ceil(Math.log10(max)));
    const ticks: number[] = [];
    for (let power = low; power <= high; power++) ticks.push(10 ** power);
    return {
      scale: (value) => (Math.log10(value) - low) / (high - low),
      ticks,
    };
  }
  if (min === max) {
    min -= 1;
    max += 1;
  }
  const step = niceStep((max - min) / 6);
  const start = fixedMin ?? Math.floor(min / step) * step;
  const end = fixedMax ?? Math.ceil(max / step) * step;
  const ticks: number[] = [];
  for (let tick = start; tick <= end + step / 1000; tick += step) {
    ticks.push(Number(tick.toPrecision(10)));
  }
  return { scale: (value) => (value - start) / (end - start), ticks };
}

function niceStep(rough: number): number {
  const power = 10 ** Math.floor(Math.log10(rough));
  for (const factor of [1, 2, 2.5, 5, 10]) {
    if (factor * power >= rough) return factor * power;
  }
  return 10 * power;
}

function formatTick(value: number): string {
  if (value !== 0 && (Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3)) {
    return value.toExponential(0);
  }
  return String(Number(value.toPrecision(6)));
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(
    ">",
    "&gt;",
  );
}
