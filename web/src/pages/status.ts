// Status: the session as WatchStatus tells it, live, and its history (ListEvents).
import { connection, describe, follow } from "../api";
import {
  CircuitState,
  ConnectionEventKind,
  ConnectionState,
  type ConnectionStatus,
} from "../gen/ibstream/v1/connection_pb";
import { MarketDataType } from "../gen/ibstream/v1/common_pb";
import { ago, clock, dateTime, fill, fixed, h, millis, scroller, setCell, table } from "../dom";

export function statusPage(root: HTMLElement, signal: AbortSignal): void {
  const state = h("span", { class: "state", id: "state", "aria-live": "polite" }, "…");
  const since = h("span", { id: "state-since" });
  const error = h("p", { class: "error", role: "alert" });
  const facts = h("dl", { class: "facts" });
  const farms = h("ul", { class: "farms", "aria-label": "Data farms" });
  const [events, eventRows] = table("Connection events", ["Time", "Kind", "State", "Code", "Message"]);
  fill(
    root,
    h("h1", {}, "Status"),
    h("p", { class: "headline" }, "Session ", state, " since ", since),
    error,
    facts,
    h("h2", {}, "Data farms"),
    farms,
    h("h2", {}, "Event history"),
    scroller(events, "Event history"),
  );

  const cells = new Map<string, HTMLElement>();
  const fact = (label: string): HTMLElement => {
    let cell = cells.get(label);
    if (!cell) {
      cell = h("dd", { class: "num" });
      facts.append(h("div", {}, h("dt", {}, label), cell));
      cells.set(label, cell);
    }
    return cell;
  };
  // The message rate is what was sent per second between two updates.
  let lastSent: { count: bigint; at: number } | undefined;
  let sendRate: number | undefined;
  let lastState: ConnectionState | undefined;
  let latest: ConnectionStatus | undefined;

  const render = (s: ConnectionStatus) => {
    latest = s;
    state.textContent = ConnectionState[s.state];
    state.dataset.state = ConnectionState[s.state];
    since.textContent = `${dateTime(s.stateSince)} (${ago(s.stateSince)} ago)`;
    error.textContent = s.lastError ? `Last error${s.lastError.code !== undefined ? ` ${s.lastError.code}` : ""}: ${s.lastError.message} (${clock(s.lastError.time)})` : "";
    const now = Date.now();
    if (lastSent && now > lastSent.at) sendRate = (Number(s.messagesSent - lastSent.count) * 1000) / (now - lastSent.at);
    lastSent = { count: s.messagesSent, at: now };
    setCell(fact("Profile"), `${s.profile} → ${s.address} (client ${s.clientId})`);
    setCell(fact("Gateway version"), s.serverVersion !== undefined ? String(s.serverVersion) : "–");
    setCell(fact("Accounts"), s.managedAccounts.length ? s.managedAccounts.join(", ") : "–");
    const rtt = millis(s.heartbeatRtt);
    setCell(fact("Heartbeat round trip"), rtt === undefined ? "–" : `${fixed(rtt, 1)} ms`, rtt);
    setCell(fact("Last heartbeat"), clock(s.lastHeartbeatTime));
    setCell(fact("Circuit"), CircuitState[s.circuitState] + (s.reconnectAttempt ? ` (attempt ${s.reconnectAttempt})` : ""));
    setCell(fact("Lines used / budget"), `${s.linesInUse} / ${s.lineBudget}`, s.linesInUse);
    setCell(fact("Message rate (sent / limit)"), `${fixed(sendRate, 1)} / ${s.messageRate} per s`, sendRate);
    setCell(fact("Messages sent"), s.messagesSent.toString(), Number(s.messagesSent));
    setCell(fact("Rate limiter wait"), `${fixed(millis(s.rateLimiterDelay), 1)} ms`);
    setCell(fact("Market data type"), MarketDataType[s.marketDataType]);
    setCell(fact("Next retry"), s.nextRetryTime ? clock(s.nextRetryTime) : "–");
    setCell(fact("Session generation"), s.generation.toString());
    const warnings = [s.competingSession && "competing session", s.ibConnectivityLost && "IB connectivity lost"].filter(Boolean);
    setCell(fact("Warnings"), warnings.length ? warnings.join(", ") : "none");
    fill(
      farms,
      ...(s.dataFarms.length
        ? s.dataFarms.map((f) =>
            h("li", { class: f.ok ? "ok" : "broken" }, `${f.name}: ${f.ok ? "OK" : "broken"} (${f.code}, ${clock(f.updateTime)})`),
          )
        : [h("li", {}, "No farm notices yet")]),
    );
    if (s.state !== lastState) {
      lastState = s.state;
      void loadEvents();
    }
  };

  const loadEvents = async () => {
    try {
      const { events: list } = await connection.listEvents({ pageSize: 50 });
      fill(
        eventRows,
        ...list.map((e) =>
          h(
            "tr",
            {},
            h("td", { class: "num" }, dateTime(e.time)),
            h("td", {}, ConnectionEventKind[e.kind]),
            h("td", {}, e.state ? ConnectionState[e.state] : ""),
            h("td", { class: "num" }, e.code !== undefined ? String(e.code) : ""),
            h("td", {}, e.message),
          ),
        ),
      );
    } catch (err) {
      fill(eventRows, h("tr", {}, h("td", { colspan: 5, class: "error" }, describe(err))));
    }
  };

  void follow(
    (s) => connection.watchStatus({}, { signal: s }),
    render,
    signal,
    (err) => {
      error.textContent = `Status stream: ${describe(err)} (retrying)`;
    },
  );
  // "Since" reads as a duration too; keep it current between updates.
  const timer = setInterval(() => {
    if (latest) since.textContent = `${dateTime(latest.stateSince)} (${ago(latest.stateSince)} ago)`;
  }, 5000);
  signal.addEventListener("abort", () => clearInterval(timer));
}
