// A small SVG line chart: one or more series over the step axis, scaled to the data, with the
// latest value of each series in the legend. Hovering reads the values at a step; dragging across
// the plot zooms to those steps (Reset zoom goes back). `data-points` counts the points in view.
import { type PointerEvent, useId, useRef, useState } from 'react';

export interface Series {
  name: string;
  color: string;
  points: [number, number][];
}

const W = 480;
const H = 200;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

/** A tick label with as many digits as the axis range needs (1590, 1600, 1610; not 1.6k three times). */
function tick(v: number, range: number): string {
  const big = Math.max(Math.abs(v), Math.abs(range));
  if (big < 0.01) return v.toExponential(Math.max(1, Math.min(4, Math.ceil(Math.log10(Math.abs(v) / (range || 1))) + 1)));
  if (Math.abs(v) >= 10_000 && range >= 1000) return `${(v / 1000).toFixed(0)}k`;
  const decimals = range > 0 ? Math.max(0, Math.min(6, Math.ceil(-Math.log10(range / 2)))) : 3;
  return v.toFixed(decimals);
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000) return `${(v / 1000).toFixed(a >= 10_000 ? 0 : 1)}k`;
  if (a < 0.01) return v.toExponential(1);
  return v.toPrecision(3);
}

/**
 * The y axis of values `ys` (already log10 for a log chart): their range; a single value gets 10%
 * of itself either side (1 when it is 0), and an axis of values that are never negative never
 * goes below 0 (a single learning rate of 1e-4 drew -1.2e-4 once).
 */
export function yDomain(ys: number[], log = false): [number, number] {
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) return [0, 1];
  if (y0 === y1) {
    const pad = Math.abs(y0) * 0.1 || 1;
    [y0, y1] = [y0 - pad, y1 + pad];
  }
  if (!log && Math.min(...ys) >= 0) y0 = Math.max(0, y0);
  return [y0, y1];
}

/** The points of each series within a step range (inclusive); all of them without one. */
export function inRange(series: Series[], range: [number, number] | null): Series[] {
  if (!range) return series;
  const [a, b] = range[0] <= range[1] ? range : [range[1], range[0]];
  return series.map((s) => ({ ...s, points: s.points.filter(([x]) => x >= a && x <= b) }));
}

/** The step of any series nearest to `x`, and each series' value there (null where it has none). */
export function valuesAt(series: Series[], x: number): { step: number; values: { name: string; value: number | null }[] } | null {
  let step: number | null = null;
  for (const s of series) for (const [px] of s.points) if (step === null || Math.abs(px - x) < Math.abs(step - x)) step = px;
  if (step === null) return null;
  const at = step;
  return { step: at, values: series.map((s) => ({ name: s.name, value: s.points.find(([px]) => px === at)?.[1] ?? null })) };
}

export function LineChart({ title, series: allSeries, log = false }: { title: string; series: Series[]; log?: boolean }) {
  const id = useId();
  const [zoom, setZoom] = useState<[number, number] | null>(null);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const [hover, setHover] = useState<number | null>(null);
  const svg = useRef<SVGSVGElement>(null);
  const series = inRange(allSeries, zoom);
  const all = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y) && (!log || y > 0));
  const count = series.reduce((n, s) => n + s.points.length, 0);
  const tf = (y: number) => (log ? Math.log10(y) : y);
  const xs = all.map(([x]) => x);
  const ys = all.map(([, y]) => tf(y));
  const x0 = zoom ? Math.min(...xs) : Math.min(...xs, 0);
  const x1 = zoom ? Math.max(...xs) : Math.max(...xs, 1);
  const [y0, y1] = yDomain(ys, log);
  const sx = (x: number) => PAD.left + ((x - x0) / (x1 - x0 || 1)) * (W - PAD.left - PAD.right);
  const sy = (y: number) => H - PAD.bottom - ((tf(y) - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  const inv = (v: number) => (log ? 10 ** v : v);
  const latest = series.map((s) => `${s.name} ${s.points.length ? fmt(s.points[s.points.length - 1]?.[1] ?? 0) : 'none'}`).join(', ');
  // the step under the pointer, from its place in the drawn plot
  const stepAt = (e: PointerEvent<SVGSVGElement>): number => {
    const box = svg.current?.getBoundingClientRect();
    if (!box || box.width === 0) return x0;
    const vx = ((e.clientX - box.left) / box.width) * W;
    return x0 + ((vx - PAD.left) / (W - PAD.left - PAD.right)) * (x1 - x0);
  };
  const read = hover !== null ? valuesAt(series, hover) : null;
  return (
    <figure className="chart" data-testid={`chart-${title}`} data-points={count}>
      <figcaption id={id}>
        <strong>{title}</strong>
        {zoom && (
          <button type="button" className="link" onClick={() => setZoom(null)}>
            Reset zoom
          </button>
        )}
        <span className="legend">
          {series.map((s) => (
            <span key={s.name}>
              <i style={{ background: s.color }} /> {s.name}: {s.points.length ? fmt(s.points[s.points.length - 1]?.[1] ?? 0) : '–'}
            </span>
          ))}
        </span>
      </figcaption>
      {count === 0 ? (
        <p className="empty">No points yet.</p>
      ) : (
        <svg
          ref={svg}
          viewBox={`0 0 ${W} ${H}`}
          role="img"
          aria-labelledby={id}
          aria-description={`latest: ${latest}`}
          onPointerDown={(e) => setDrag([stepAt(e), stepAt(e)])}
          onPointerMove={(e) => {
            const x = stepAt(e);
            setHover(x);
            if (drag) setDrag([drag[0], x]);
          }}
          onPointerUp={() => {
            // a drag over a few steps zooms; a click does nothing
            if (drag && Math.abs(drag[1] - drag[0]) >= Math.max(1, (x1 - x0) / 50)) setZoom([Math.round(drag[0]), Math.round(drag[1])]);
            setDrag(null);
          }}
          onPointerLeave={() => {
            setHover(null);
            setDrag(null);
          }}
        >
          <title>{`${title}: ${latest}`}</title>
          {[0, 0.5, 1].map((f) => {
            const v = y0 + f * (y1 - y0);
            const y = H - PAD.bottom - f * (H - PAD.top - PAD.bottom);
            return (
              <g key={f}>
                <line x1={PAD.left} x2={W - PAD.right} y1={y} y2={y} className="grid" />
                <text x={PAD.left - 6} y={y + 4} textAnchor="end">
                  {tick(inv(v), inv(y1) - inv(y0))}
                </text>
              </g>
            );
          })}
          <text x={PAD.left} y={H - 8}>
            {x0}
          </text>
          <text x={W - PAD.right} y={H - 8} textAnchor="end">
            step {x1}
          </text>
          {series.map((s) => {
            const pts = s.points.filter(([, y]) => Number.isFinite(y) && (!log || y > 0));
            return (
              <g key={s.name}>
                <polyline fill="none" stroke={s.color} strokeWidth={2} points={pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')} />
                {pts.length < 40 && pts.map(([x, y]) => <circle key={x} cx={sx(x)} cy={sy(y)} r={2.5} fill={s.color} />)}
              </g>
            );
          })}
          {read && <line x1={sx(read.step)} x2={sx(read.step)} y1={PAD.top} y2={H - PAD.bottom} className="cursor" />}
          {drag && (
            <rect
              x={Math.min(sx(drag[0]), sx(drag[1]))}
              y={PAD.top}
              width={Math.abs(sx(drag[1]) - sx(drag[0]))}
              height={H - PAD.top - PAD.bottom}
              className="selection"
            />
          )}
        </svg>
      )}
      {read && (
        <p className="readout" data-testid="readout">
          step {read.step}: {read.values.map((v) => `${v.name} ${v.value === null ? '–' : fmt(v.value)}`).join(', ')}
        </p>
      )}
    </figure>
  );
}
