// Option chain: an underlying's expirations, then calls | strike | puts with quotes and
// Greeks (StreamOptionChain), the Greeks' source marked, the money line drawn at the
// underlying's price, and the window following the server's re-centring.
import { describe, follow, marketData } from "../api";
import {
  GreeksSource,
  OptionRight,
  type Instrument,
  type OptionQuote,
  type Quote,
} from "../gen/ibstream/v1/market_data_pb";
import { fill, fixed, h, scroller, setCell } from "../dom";

const SIDE = ["Bid", "Ask", "IV %", "Delta", "Gamma", "Theta", "Vega", "OI"] as const;
type Cells = HTMLElement[];

export function chainPage(root: HTMLElement, signal: AbortSignal): void {
  const symbol = h("input", { name: "underlying", id: "underlying", value: "SPY", autocomplete: "off", required: true }) as HTMLInputElement;
  const expiry = h("select", { name: "expiration", id: "expiration", disabled: true }) as HTMLSelectElement;
  const strikes = h("input", { name: "strike_count", id: "strike-count", type: "number", value: "12", min: 2, max: 40 }) as HTMLInputElement;
  const notice = h("p", { class: "notice", role: "status" });
  const spot = h("span", { class: "num", id: "spot" }, "–");
  const body = h("tbody");
  const head = h(
    "thead",
    {},
    h("tr", {}, h("th", { colspan: SIDE.length, scope: "colgroup" }, "Calls"), h("th", {}), h("th", { colspan: SIDE.length, scope: "colgroup" }, "Puts")),
    h(
      "tr",
      {},
      ...SIDE.map((c) => h("th", { scope: "col", class: "num" }, c)),
      h("th", { scope: "col", class: "num strike" }, "Strike"),
      ...SIDE.map((c) => h("th", { scope: "col", class: "num" }, c)),
    ),
  );
  const grid = h("table", { id: "chain", class: "chain" }, h("caption", { class: "sr-only" }, "Option chain"), head, body);
  fill(
    root,
    h("h1", {}, "Option chain"),
    h(
      "form",
      { class: "inline", onsubmit: (e: Event) => { e.preventDefault(); void loadExpirations(); } },
      h("label", { for: "underlying" }, "Underlying"),
      symbol,
      h("button", { type: "submit" }, "Load"),
      h("label", { for: "expiration" }, "Expiration"),
      expiry,
      h("label", { for: "strike-count" }, "Strikes"),
      strikes,
    ),
    notice,
    h("p", { class: "headline" }, "Underlying ", spot, " ", h("span", { id: "greeks-legend", class: "muted" }, "Greeks: plain from IB's model, ", h("em", { class: "computed" }, "italic†"), " computed here (Black-Scholes)")),
    scroller(grid, "Option chain"),
  );

  let stream: AbortController | undefined;
  expiry.addEventListener("change", () => start());
  strikes.addEventListener("change", () => start());

  const loadExpirations = async () => {
    const underlying = symbol.value.trim().toUpperCase();
    if (!underlying) return;
    notice.textContent = "Loading expirations…";
    try {
      const chain = await marketData.getOptionChain({ underlying: { symbol: underlying } }, { signal });
      fill(expiry, ...chain.expirations.map((e) => h("option", { value: e }, `${e.slice(0, 4)}-${e.slice(4, 6)}-${e.slice(6, 8)}`)));
      expiry.disabled = chain.expirations.length === 0;
      notice.textContent = chain.expirations.length ? "" : `${underlying} lists no expirations.`;
      start();
    } catch (err) {
      notice.textContent = describe(err);
    }
  };

  const start = () => {
    stream?.abort();
    fill(body);
    if (!expiry.value) return;
    stream = new AbortController();
    signal.addEventListener("abort", () => stream?.abort(), { once: true });
    const underlying = { symbol: symbol.value.trim().toUpperCase() };
    const options = new Map<bigint, OptionQuote>();
    let window: Instrument[] = [];
    let center: number | undefined;
    let under: Quote | undefined;
    const rows = new Map<number, { tr: HTMLTableRowElement; call: Cells; put: Cells }>();

    const layout = () => {
      const byStrike = [...new Set(window.map((o) => o.strike ?? 0))].sort((a, b) => a - b);
      rows.clear();
      fill(
        body,
        ...byStrike.map((strike) => {
          const cells = () => SIDE.map(() => h("td", { class: "num" }));
          const call = cells();
          const put = cells();
          const tr = h("tr", { "data-strike": strike }, ...call, h("th", { scope: "row", class: "num strike" }, fixed(strike, 2)), ...put);
          rows.set(strike, { tr, call, put });
          return tr;
        }),
      );
      for (const o of options.values()) paint(o);
      money();
    };

    const paint = (o: OptionQuote) => {
      const inst = o.option;
      const row = inst && rows.get(inst.strike ?? NaN);
      if (!row) return;
      const cells = inst.right === OptionRight.PUT ? row.put : row.call;
      const q = o.quote;
      const g = o.greeks;
      const values: [number | undefined, number][] = [
        [q?.bid, 2],
        [q?.ask, 2],
        [g?.impliedVolatility !== undefined ? g.impliedVolatility * 100 : undefined, 1],
        [g?.delta, 3],
        [g?.gamma, 4],
        [g?.theta, 3],
        [g?.vega, 3],
        [o.openInterest, 0],
      ];
      // Prices flash; the Greeks move with every tick of the underlying, and flashing
      // them all would hide the prices' changes.
      values.forEach(([v, d], i) => setCell(cells[i], fixed(v, d), v, i < 2));
      const computed = g?.source === GreeksSource.COMPUTED;
      for (const c of cells.slice(2, 7)) {
        c.classList.toggle("computed", computed);
        c.title = g ? (computed ? "computed here (Black-Scholes)" : "IB's model") : "";
      }
      row.tr.classList.toggle("stale", q?.stale ?? false);
    };

    // The money line: strikes below the underlying's price have in-the-money calls,
    // those above in-the-money puts; the line sits between them.
    const money = () => {
      const price = under?.last ?? (under?.bid !== undefined && under?.ask !== undefined ? (under.bid + under.ask) / 2 : center);
      spot.textContent = `${underlying.symbol} ${fixed(price, 2)}`;
      if (price === undefined) return;
      let previous: HTMLTableRowElement | undefined;
      for (const [strike, row] of [...rows.entries()].sort((a, b) => a[0] - b[0])) {
        row.tr.classList.toggle("itm-call", strike < price);
        row.tr.classList.toggle("itm-put", strike > price);
        row.tr.classList.remove("money-line");
        if (strike > price && previous?.classList.contains("itm-call")) row.tr.classList.add("money-line");
        previous = row.tr;
      }
    };

    notice.textContent = "Opening the chain…";
    void follow(
      (s) => marketData.streamOptionChain({ underlying, expirations: [expiry.value], strikeCount: Number(strikes.value) >>> 0 }, { signal: s }),
      (m) => {
        switch (m.event.case) {
          case "window":
            window = m.event.value.options;
            center = m.event.value.centerPrice;
            for (const id of m.event.value.removedConIds) options.delete(id);
            notice.textContent = center !== undefined ? `Window centred on ${fixed(center, 2)}` : "";
            layout();
            break;
          case "options":
            for (const o of m.event.value.options) {
              if (o.option) options.set(o.option.conId, o);
              paint(o);
            }
            break;
          case "underlying":
            under = m.event.value;
            money();
            break;
          case "status":
            if (m.event.value.code !== 0) notice.textContent = `${m.event.value.instrument?.localSymbol || m.event.value.instrument?.symbol}: ${m.event.value.message}`;
            break;
          case "snapshotComplete":
            grid.dataset.complete = "true";
            break;
        }
      },
      stream.signal,
      (err) => {
        notice.textContent = `Chain stream: ${describe(err)} (retrying)`;
      },
    );
  };

  void loadExpirations();
}
