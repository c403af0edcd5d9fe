// Quotes: a watchlist streaming bid / ask / last / change (StreamQuotes), stale and
// delayed marked; symbols found through SearchSymbols. The list stays in this browser.
import { describe, follow, marketData } from "../api";
import { MarketDataType } from "../gen/ibstream/v1/common_pb";
import {
  InstrumentStatusKind,
  SecurityType,
  type Instrument,
  type Quote,
} from "../gen/ibstream/v1/market_data_pb";
import { clock, fill, fixed, h, scroller, setCell, signed, table } from "../dom";

const LIST_ITEM = "ibstream.watchlist";
const DEFAULT_LIST = ["AAPL", "MSFT", "SPY"];

interface Entry {
  symbol: string;
  secType: SecurityType;
}

function loadList(): Entry[] {
  try {
    const saved = JSON.parse(localStorage.getItem(LIST_ITEM) ?? "null");
    if (Array.isArray(saved)) return saved.filter((e) => typeof e?.symbol === "string");
  } catch {
    // A damaged list starts over.
  }
  return DEFAULT_LIST.map((symbol) => ({ symbol, secType: SecurityType.STOCK }));
}

const DELAYED = new Set([MarketDataType.DELAYED, MarketDataType.DELAYED_FROZEN]);

export function quotesPage(root: HTMLElement, signal: AbortSignal): void {
  let list = loadList();
  let stream: AbortController | undefined;
  const notice = h("p", { class: "notice", role: "status" });
  const search = h("input", { name: "symbol_search", id: "symbol-search", type: "search", autocomplete: "off", placeholder: "Symbol or name", "aria-controls": "matches" }) as HTMLInputElement;
  const matches = h("ul", { class: "matches", id: "matches", "aria-label": "Matching symbols" });
  const [grid, rows] = table("Watchlist", [
    "Symbol",
    ["Bid", "num"],
    ["Ask", "num"],
    ["Last", "num"],
    ["Change", "num"],
    ["Change %", "num"],
    ["Volume", "num"],
    "Updated",
    "State",
    "",
  ]);
  grid.id = "quotes";
  fill(
    root,
    h("h1", {}, "Quotes"),
    h(
      "form",
      { class: "inline", role: "search", onsubmit: (e: Event) => { e.preventDefault(); (matches.querySelector("button") as HTMLButtonElement | null)?.click(); } },
      h("label", { for: "symbol-search" }, "Add symbol"),
      search,
      h("button", { type: "submit" }, "Add first match"),
    ),
    matches,
    notice,
    scroller(grid, "Watchlist"),
    h("p", { class: "muted" }, "Change is against the prior close. ", h("span", { class: "badge stale" }, "stale"), " the session or its farm is down; ", h("span", { class: "badge delayed" }, "delayed"), " delayed data."),
  );

  const save = () => localStorage.setItem(LIST_ITEM, JSON.stringify(list));

  let searchTimer: ReturnType<typeof setTimeout> | undefined;
  let searchSeq = 0;
  search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => void runSearch(search.value.trim()), 250);
  });
  const runSearch = async (pattern: string) => {
    const seq = ++searchSeq;
    if (!pattern) {
      fill(matches);
      return;
    }
    try {
      const found = (await marketData.searchSymbols({ pattern }, { signal })).matches;
      if (seq !== searchSeq) return;
      fill(
        matches,
        ...found.slice(0, 8).map((m) =>
          h(
            "li",
            {},
            h(
              "button",
              { type: "button", onclick: () => add(m.instrument!) },
              h("strong", {}, m.instrument?.symbol ?? "?"),
              ` ${SecurityType[m.instrument?.secType ?? 0]} ${m.instrument?.primaryExchange ?? ""} — ${m.description}`,
            ),
          ),
        ),
        found.length ? null : h("li", { class: "muted" }, "No match"),
      );
    } catch (err) {
      if (seq === searchSeq) fill(matches, h("li", { class: "error" }, describe(err)));
    }
  };

  const add = (instrument: Instrument) => {
    const secType = instrument.secType || SecurityType.STOCK;
    if (!list.some((e) => e.symbol === instrument.symbol && e.secType === secType)) {
      list = [...list, { symbol: instrument.symbol, secType }];
      save();
      restart();
    }
    search.value = "";
    fill(matches);
    search.focus();
  };

  const remove = (index: number) => {
    list = list.filter((_, i) => i !== index);
    save();
    restart();
  };

  interface Row {
    tr: HTMLTableRowElement;
    cells: Record<"bid" | "ask" | "last" | "change" | "pct" | "volume" | "time", HTMLElement>;
    state: HTMLElement;
    quote?: Quote;
  }

  const restart = () => {
    stream?.abort();
    stream = new AbortController();
    signal.addEventListener("abort", () => stream?.abort(), { once: true });
    const table: Row[] = list.map((entry, i) => {
      const cell = () => h("td", { class: "num" });
      const cells = { bid: cell(), ask: cell(), last: cell(), change: cell(), pct: cell(), volume: cell(), time: h("td", { class: "num" }) };
      const state = h("td", { class: "state-cell" }, "…");
      const tr = h(
        "tr",
        { "data-symbol": entry.symbol },
        h("th", { scope: "row" }, entry.symbol),
        cells.bid, cells.ask, cells.last, cells.change, cells.pct, cells.volume, cells.time,
        state,
        h("td", {}, h("button", { type: "button", class: "remove", "aria-label": `Remove ${entry.symbol}`, onclick: () => remove(i) }, "✕")),
      );
      return { tr, cells, state };
    });
    fill(rows, ...table.map((r) => r.tr), list.length ? null : h("tr", {}, h("td", { colspan: 10, class: "muted" }, "Add a symbol to watch it.")));
    if (!list.length) return;
    const instruments = list.map((e) => ({ symbol: e.symbol, secType: e.secType }));
    void follow(
      (s) => marketData.streamQuotes({ instruments }, { signal: s }),
      (message) => {
        const row = table[message.index];
        if (!row) return;
        if (message.event.case === "quote") {
          renderQuote(row, message.event.value);
        } else if (message.event.case === "status") {
          const st = message.event.value;
          const kind = InstrumentStatusKind[st.kind];
          row.state.title = st.message;
          if (st.kind === InstrumentStatusKind.STALE) row.tr.classList.add("stale");
          if (st.kind === InstrumentStatusKind.RESUMED) row.tr.classList.remove("stale");
          if (st.code !== 0) row.tr.classList.add("failed");
          setBadges(row, st.code !== 0 ? `${kind}: ${st.message}` : undefined);
        }
      },
      stream.signal,
      (err) => {
        notice.textContent = `Quote stream: ${describe(err)} (retrying)`;
        for (const row of table) row.tr.classList.add("stale");
      },
    );
  };

  const renderQuote = (row: Row, q: Quote) => {
    notice.textContent = "";
    row.quote = q;
    const { cells } = row;
    const change = q.last !== undefined && q.close !== undefined ? q.last - q.close : undefined;
    setCell(cells.bid, fixed(q.bid, 2), q.bid);
    setCell(cells.ask, fixed(q.ask, 2), q.ask);
    setCell(cells.last, fixed(q.last, 2), q.last);
    setCell(cells.change, signed(change, 2), change);
    const pct = change !== undefined && q.close ? (change / q.close) * 100 : undefined;
    setCell(cells.pct, pct !== undefined ? `${signed(pct, 2)} %` : "–", pct);
    setCell(cells.volume, q.volume !== undefined ? Math.round(q.volume).toLocaleString() : "–", q.volume);
    cells.time.textContent = clock(q.receivedAt);
    for (const el of [cells.change, cells.pct]) {
      el.classList.toggle("pos", (change ?? 0) > 0);
      el.classList.toggle("neg", (change ?? 0) < 0);
    }
    row.tr.classList.toggle("stale", q.stale);
    row.tr.classList.remove("failed");
    setBadges(row);
  };

  const setBadges = (row: Row, failure?: string) => {
    const q = row.quote;
    const stale = row.tr.classList.contains("stale");
    const delayed = q !== undefined && DELAYED.has(q.marketDataType);
    fill(
      row.state,
      failure ? h("span", { class: "badge failed" }, failure) : null,
      stale ? h("span", { class: "badge stale" }, "stale") : null,
      delayed ? h("span", { class: "badge delayed" }, "delayed") : null,
      !failure && !stale && !delayed && q ? h("span", { class: "badge live" }, "live") : null,
    );
  };

  restart();
}
