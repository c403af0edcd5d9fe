// Small DOM helpers: element building, number formats, and the brief flash of a change.
import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";

type Attrs = Record<string, string | number | boolean | undefined | ((e: Event) => void)>;
type Child = Node | string | null | undefined | false;

/** An element with attributes (`on…` keys become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  el.append(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
  return el;
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
}

/** A fixed number of decimals, or a dash for a value IB has not sent. */
export function fixed(value: number | undefined, decimals: number): string {
  return value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(decimals);
}

/** Signed, for changes. */
export function signed(value: number | undefined, decimals: number): string {
  if (value === undefined || !Number.isFinite(value)) return "–";
  return (value > 0 ? "+" : "") + value.toFixed(decimals);
}

export function millis(d: Duration | undefined): number | undefined {
  return d ? Number(d.seconds) * 1000 + d.nanos / 1e6 : undefined;
}

export function date(t: Timestamp | undefined): Date | undefined {
  return t ? new Date(Number(t.seconds) * 1000 + t.nanos / 1e6) : undefined;
}

export function clock(t: Timestamp | undefined): string {
  const d = date(t);
  return d ? d.toLocaleTimeString([], { hour12: false }) : "–";
}

export function dateTime(t: Timestamp | undefined): string {
  const d = date(t);
  return d ? `${d.toLocaleDateString()} ${d.toLocaleTimeString([], { hour12: false })}` : "–";
}

/** How long ago, coarse: "42 s", "3 min", "2 h". */
export function ago(t: Timestamp | undefined): string {
  const d = date(t);
  if (!d) return "–";
  const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/**
 * Sets a cell's text; when it changed (and `flash`), flashes it up or down (by the
 * numeric direction) for a moment.
 */
export function setCell(el: HTMLElement, text: string, value?: number, flash = true): void {
  if (el.textContent === text) return;
  const before = Number(el.dataset.value);
  const hadValue = el.textContent !== "" && el.textContent !== "–";
  el.textContent = text;
  if (value !== undefined) el.dataset.value = String(value);
  if (!hadValue || !flash) return;
  const direction = value !== undefined && Number.isFinite(before) ? (value > before ? "up" : value < before ? "down" : "") : "";
  el.classList.remove("flash", "up", "down");
  void el.offsetWidth; // restarts the animation
  el.classList.add("flash");
  if (direction) el.classList.add(direction);
}

/** A labelled form field: label, control, and the place its validation message goes. */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement, hint?: string): HTMLElement {
  const id = control.id || `f-${control.name}`;
  control.id = id;
  const error = h("span", { class: "field-error", id: `${id}-error`, role: "alert" });
  control.setAttribute("aria-describedby", `${id}-error`);
  return h(
    "div",
    { class: "field", "data-field": control.name },
    h("label", { for: id }, label),
    control,
    hint ? h("small", { class: "hint" }, hint) : null,
    error,
  );
}

/** A table whose header is given; returns the table and its body. */
export function table(caption: string, headers: (string | [string, string])[]): [HTMLTableElement, HTMLTableSectionElement] {
  const body = h("tbody");
  const head = h(
    "tr",
    {},
    ...headers.map((c) => (Array.isArray(c) ? h("th", { scope: "col", class: c[1] }, c[0]) : h("th", { scope: "col" }, c))),
  );
  const t = h("table", {}, h("caption", { class: "sr-only" }, caption), h("thead", {}, head), body);
  return [t, body];
}

/** Scrolls wide tables sideways in a narrow window instead of squeezing them. */
export function scroller(t: HTMLElement, label: string): HTMLElement {
  return h("div", { class: "scroll", role: "region", "aria-label": label, tabindex: 0 }, t);
}
