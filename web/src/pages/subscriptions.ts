// Subscriptions: the instruments held at IB, the streams on each, lines and the request
// rate (ListSubscriptions and GetStatus, refreshed every two seconds).
import { connection, describe, marketData } from "../api";
import { MarketDataType } from "../gen/ibstream/v1/common_pb";
import { SecurityType, type Instrument } from "../gen/ibstream/v1/market_data_pb";
import { fill, fixed, h, scroller, table } from "../dom";

const REFRESH_MS = 2000;

export function subscriptionsPage(root: HTMLElement, signal: AbortSignal): void {
  const summary = h("dl", { class: "facts", id: "limits" });
  const notice = h("p", { class: "notice", role: "status" });
  const [grid, rows] = table("Subscriptions", ["Instrument", "Type", ["Streams", "num"], "Lingering", "Stale", "Data", ["Sequence", "num"]]);
  grid.id = "subscriptions";
  fill(root, h("h1", {}, "Subscriptions"), summary, notice, scroller(grid, "Subscriptions"));
  let last: { sent: bigint; at: number } | undefined;

  const refresh = async () => {
    try {
      const [subs, status] = await Promise.all([marketData.listSubscriptions({}, { signal }), connection.getStatus({}, { signal })]);
      const now = Date.now();
      const rate = last && now > last.at ? (Number(status.messagesSent - last.sent) * 1000) / (now - last.at) : undefined;
      last = { sent: status.messagesSent, at: now };
      const l = subs.limits;
      const fact = (k: string, v: string) => h("div", {}, h("dt", {}, k), h("dd", { class: "num" }, v));
      fill(
        summary,
        fact("Lines used / budget", l ? `${l.linesInUse} / ${l.lineBudget}` : "–"),
        fact("Requests to IB", `${fixed(rate, 1)} per s (limit ${l?.messageRate ?? status.messageRate})`),
        fact("Streams open", l ? String(l.streamsOpen) : "–"),
        fact("Streams per key", l ? String(l.maxStreamsPerKey) : "–"),
        fact("Instruments per request", l ? String(l.maxInstrumentsPerRequest) : "–"),
      );
      fill(
        rows,
        ...[...subs.subscriptions].sort((a, b) => label(a.instrument).localeCompare(label(b.instrument))).map((s) => {
          const i = s.instrument;
          const name = label(i);
          return h(
            "tr",
            { class: s.stale ? "stale" : "" },
            h("th", { scope: "row" }, name),
            h("td", {}, SecurityType[i?.secType ?? 0]),
            h("td", { class: "num" }, String(s.streamCount)),
            h("td", {}, s.lingering ? "yes" : ""),
            h("td", {}, s.stale ? h("span", { class: "badge stale" }, "stale") : ""),
            h("td", {}, MarketDataType[s.marketDataType]),
            h("td", { class: "num" }, s.sequence.toString()),
          );
        }),
        subs.subscriptions.length ? null : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "Nothing is held at IB.")),
      );
      notice.textContent = "";
    } catch (err) {
      if (!signal.aborted) notice.textContent = describe(err);
    }
  };
  const timer = setInterval(() => void refresh(), REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
  void refresh();
}

/** Options by their local (OCC) symbol, everything else by its symbol. */
function label(i: Instrument | undefined): string {
  return i ? i.localSymbol || i.symbol : "?";
}
