// Settings: profiles (list, activate, edit, create), write-only credentials, Test
// connection, and Connect / Disconnect / Reconnect. Admin keys only.
import { connection, describe, invalidField } from "../api";
import {
  ConnectionState,
  TestConnectionFailure,
  type Settings,
  type TestConnectionResponse,
} from "../gen/ibstream/v1/connection_pb";
import { MarketDataType } from "../gen/ibstream/v1/common_pb";
import { dateTime, field, fill, fixed, h, millis } from "../dom";

/** The form's fields, as the API names them (and so as its errors name them). */
type FieldName =
  | "host"
  | "port"
  | "client_id"
  | "account"
  | "connect_on_start"
  | "connection_timeout"
  | "retry_attempts"
  | "market_data_type"
  | "allow_delayed_fallback"
  | "message_rate"
  | "line_budget";

const MARKET_DATA_TYPES = [MarketDataType.LIVE, MarketDataType.FROZEN, MarketDataType.DELAYED, MarketDataType.DELAYED_FROZEN];

export function settingsPage(root: HTMLElement, signal: AbortSignal): void {
  const profiles = h("ul", { class: "profiles", "aria-label": "Profiles" });
  const editor = h("section", { "aria-labelledby": "edit-heading" });
  const creds = h("section", { "aria-labelledby": "creds-heading" });
  const session = h("section", { "aria-labelledby": "session-heading" });
  const message = h("p", { class: "notice", role: "status", id: "settings-notice" });
  const newName = h("input", { name: "new_profile", id: "new-profile", autocomplete: "off", placeholder: "paper" });
  fill(
    root,
    h("h1", {}, "Settings"),
    message,
    h(
      "div",
      { class: "columns" },
      h(
        "section",
        { "aria-labelledby": "profiles-heading" },
        h("h2", { id: "profiles-heading" }, "Profiles"),
        profiles,
        h(
          "form",
          {
            class: "inline",
            onsubmit: (e: Event) => {
              e.preventDefault();
              void create(newName.value.trim());
            },
          },
          field("New profile", newName),
          h("button", { type: "submit" }, "Create"),
        ),
      ),
      editor,
    ),
    h("div", { class: "columns" }, creds, session),
  );

  let selected = "";

  const notify = (text: string, bad = false) => {
    message.textContent = text;
    message.classList.toggle("error", bad);
  };

  const loadProfiles = async (select?: string) => {
    try {
      const list = (await connection.listProfiles({})).profiles;
      selected = select ?? (list.find((p) => p.name === selected) ?? list.find((p) => p.active) ?? list[0])?.name ?? "";
      fill(
        profiles,
        ...list.map((p) =>
          h(
            "li",
            { class: p.name === selected ? "selected" : "" },
            h("button", { type: "button", class: "link", "aria-pressed": String(p.name === selected), onclick: () => void loadProfiles(p.name) }, p.name),
            p.active ? h("span", { class: "badge" }, "active") : h("button", { type: "button", onclick: () => void activate(p.name) }, "Activate"),
            h("small", {}, ` ${p.host}:${p.port}`),
          ),
        ),
      );
      const current = list.find((p) => p.name === selected);
      if (current) {
        renderEditor(current);
        renderCredentials(current);
      }
    } catch (err) {
      notify(describe(err), true);
    }
  };

  const activate = async (name: string) => {
    try {
      await connection.activateProfile({ profile: name });
      notify(`Profile ${name} is active; the session uses it from the next Connect or Reconnect.`);
      await loadProfiles(name);
    } catch (err) {
      notify(describe(err), true);
    }
  };

  const create = async (name: string) => {
    if (!name) {
      notify("Name the new profile.", true);
      return;
    }
    try {
      // A new profile takes every default; one masked field is enough to create it.
      await connection.updateSettings({ settings: { name, connectOnStart: false }, updateMask: { paths: ["connect_on_start"] }, allowMissing: true });
      newName.value = "";
      notify(`Profile ${name} created.`);
      await loadProfiles(name);
    } catch (err) {
      notify(describe(err), true);
    }
  };

  const renderEditor = (p: Settings) => {
    const input = (name: FieldName, value: string, type = "text", extra: Record<string, string | number> = {}) =>
      h("input", { name, type, value, ...extra }) as HTMLInputElement;
    const check = (name: FieldName, on: boolean) => {
      const box = h("input", { name, type: "checkbox" }) as HTMLInputElement;
      box.checked = on;
      return box;
    };
    const mdt = h(
      "select",
      { name: "market_data_type" },
      ...MARKET_DATA_TYPES.map((t) => h("option", { value: t, selected: t === p.marketDataType }, MarketDataType[t])),
    );
    const controls = {
      host: input("host", p.host, "text", { autocomplete: "off" }),
      port: input("port", String(p.port), "number", { min: 1, max: 65535 }),
      client_id: input("client_id", String(p.clientId), "number"),
      account: input("account", p.account ?? "", "text", { autocomplete: "off" }),
      connect_on_start: check("connect_on_start", p.connectOnStart),
      connection_timeout: input("connection_timeout", fixed(millis(p.connectionTimeout)! / 1000, 1), "number", { step: 0.1, min: 0 }),
      retry_attempts: input("retry_attempts", String(p.retryAttempts), "number", { min: 0 }),
      market_data_type: mdt,
      allow_delayed_fallback: check("allow_delayed_fallback", p.allowDelayedFallback),
      message_rate: input("message_rate", String(p.messageRate), "number", { min: 1 }),
      line_budget: input("line_budget", String(p.lineBudget), "number", { min: 1 }),
    } satisfies Record<FieldName, HTMLInputElement | HTMLSelectElement>;
    const original = new Map(Object.entries(controls).map(([k, c]) => [k, value(c)]));
    const form = h(
      "form",
      {
        id: "profile-form",
        novalidate: true,
        onsubmit: (e: Event) => {
          e.preventDefault();
          void save(p.name, controls, original, form);
        },
      },
      h("h2", { id: "edit-heading" }, `Profile ${p.name}`),
      h("p", { class: "muted" }, `Updated ${dateTime(p.updateTime)}`),
      h(
        "div",
        { class: "grid" },
        field("Host", controls.host),
        field("Port", controls.port),
        field("Client id", controls.client_id),
        field("Account", controls.account, "empty: the login's only account"),
        field("Connection timeout (s)", controls.connection_timeout),
        field("Retry attempts", controls.retry_attempts, "before the circuit opens"),
        field("Market data type", controls.market_data_type),
        field("Message rate (per s)", controls.message_rate),
        field("Line budget", controls.line_budget),
        field("Connect on start", controls.connect_on_start),
        field("Allow delayed fallback", controls.allow_delayed_fallback),
      ),
      h("button", { type: "submit" }, "Save"),
      " ",
      h("button", { type: "button", onclick: () => void test(p.name, controls) }, "Test connection"),
      h("div", { id: "test-result", role: "status", "aria-live": "polite" }),
    );
    fill(editor, form);
  };

  const value = (c: HTMLInputElement | HTMLSelectElement) => (c instanceof HTMLInputElement && c.type === "checkbox" ? String(c.checked) : c.value);

  const save = async (
    name: string,
    controls: Record<FieldName, HTMLInputElement | HTMLSelectElement>,
    original: Map<string, string>,
    form: HTMLElement,
  ) => {
    for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    const changed = (Object.keys(controls) as FieldName[]).filter((k) => value(controls[k]) !== original.get(k));
    if (!changed.length) {
      notify("Nothing changed.");
      return;
    }
    const v = (k: FieldName) => controls[k].value.trim();
    const showError = (k: FieldName, reason: string) => {
      const slot = form.querySelector(`#${controls[k].id}-error`);
      if (slot) slot.textContent = reason;
      controls[k].setAttribute("aria-invalid", "true");
    };
    // Numbers the wire cannot carry are refused here, before they could wrap into
    // another value; everything else is the server's to judge.
    const whole = (k: FieldName, min: number, max: number): number | undefined => {
      const n = Number(v(k));
      if (v(k) === "" || !Number.isInteger(n) || n < min || n > max) {
        showError(k, `must be a whole number from ${min} to ${max}`);
        return undefined;
      }
      return n;
    };
    const U32 = 4294967295;
    const numbers = {
      port: whole("port", 0, U32),
      client_id: whole("client_id", -2147483648, 2147483647),
      retry_attempts: whole("retry_attempts", 0, U32),
      message_rate: whole("message_rate", 0, U32),
      line_budget: whole("line_budget", 0, U32),
    };
    const seconds = Number(v("connection_timeout"));
    if (v("connection_timeout") === "" || !Number.isFinite(seconds) || seconds < 0) showError("connection_timeout", "must be a number of seconds");
    const firstBad = form.querySelector<HTMLElement>('[aria-invalid="true"]');
    if (firstBad) {
      firstBad.focus();
      notify("Not saved: correct the marked fields.", true);
      return;
    }
    try {
      await connection.updateSettings({
        settings: {
          name,
          host: v("host"),
          port: numbers.port!,
          clientId: numbers.client_id!,
          account: v("account") || undefined,
          connectOnStart: (controls.connect_on_start as HTMLInputElement).checked,
          connectionTimeout: { seconds: BigInt(Math.trunc(seconds)), nanos: Math.round((seconds % 1) * 1e9) },
          retryAttempts: numbers.retry_attempts!,
          marketDataType: Number(v("market_data_type")),
          allowDelayedFallback: (controls.allow_delayed_fallback as HTMLInputElement).checked,
          messageRate: numbers.message_rate!,
          lineBudget: numbers.line_budget!,
        },
        updateMask: { paths: changed },
      });
      notify(`Saved ${changed.join(", ")} of ${name}.`);
      await loadProfiles(name);
    } catch (err) {
      const bad = invalidField(err);
      const control = bad && controls[bad.field as FieldName];
      if (bad && control) {
        showError(bad.field as FieldName, bad.reason);
        control.focus();
        notify(`Not saved: ${bad.field} ${bad.reason}`, true);
      } else {
        notify(`Not saved: ${describe(err)}`, true);
      }
    }
  };

  const test = async (name: string, controls: Record<FieldName, HTMLInputElement | HTMLSelectElement>) => {
    const out = editor.querySelector("#test-result") as HTMLElement;
    fill(out, "Testing…");
    const port = Number(controls.port.value);
    try {
      const r = await connection.testConnection({ profile: name, host: controls.host.value.trim(), port: port >>> 0 });
      fill(out, renderTest(r));
    } catch (err) {
      fill(out, h("p", { class: "error" }, describe(err)));
    }
  };

  const renderCredentials = (p: Settings) => {
    const user = h("input", { name: "username", autocomplete: "off" }) as HTMLInputElement;
    const pass = h("input", { name: "password", type: "password", autocomplete: "new-password" }) as HTMLInputElement;
    const form = h(
      "form",
      {
        onsubmit: async (e: Event) => {
          e.preventDefault();
          try {
            await connection.setCredentials({ profile: p.name, username: user.value, password: pass.value });
            notify(`Credentials of ${p.name} stored.`);
            await loadProfiles(p.name);
          } catch (err) {
            const bad = invalidField(err);
            const slot = bad && form.querySelector(`[data-field="${bad.field}"] .field-error`);
            if (slot) slot.textContent = bad!.reason;
            notify(`Not stored: ${describe(err)}`, true);
          }
        },
      },
      h("h2", { id: "creds-heading" }, "Credentials"),
      h("p", { id: "creds-state" }, `Credentials of ${p.name}: `, h("strong", {}, p.credentialsSet ? "set" : "not set"), ". They are write-only: nothing shows them again."),
      field("Username", user),
      field("Password", pass),
      h("button", { type: "submit" }, "Store"),
      " ",
      h(
        "button",
        {
          type: "button",
          disabled: !p.credentialsSet,
          onclick: async () => {
            if (!confirm(`Forget the credentials of ${p.name}?`)) return;
            try {
              await connection.clearCredentials({ profile: p.name });
              notify(`Credentials of ${p.name} cleared.`);
              await loadProfiles(p.name);
            } catch (err) {
              notify(describe(err), true);
            }
          },
        },
        "Clear",
      ),
    );
    fill(creds, form);
  };

  const sessionState = h("span", { id: "session-state" }, "…");
  const act = (label: string, run: () => Promise<unknown>, disruptive: boolean) =>
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          const live = sessionState.textContent === ConnectionState[ConnectionState.CONNECTED];
          if (disruptive && live && !confirm(`${label} the live IB session? Every stream turns stale until it is back.`)) return;
          notify(`${label}…`);
          try {
            await run();
            notify(`${label}: done.`);
          } catch (err) {
            notify(`${label}: ${describe(err)}`, true);
          }
          await refreshState();
        },
      },
      label,
    );
  fill(
    session,
    h("h2", { id: "session-heading" }, "Session"),
    h("p", {}, "State: ", sessionState),
    act("Connect", () => connection.connect({}), false),
    " ",
    act("Disconnect", () => connection.disconnect({}), true),
    " ",
    act("Reconnect", () => connection.reconnect({}), true),
  );
  const refreshState = async () => {
    try {
      sessionState.textContent = ConnectionState[(await connection.getStatus({})).state];
    } catch (err) {
      sessionState.textContent = describe(err);
    }
  };
  const timer = setInterval(() => void refreshState(), 2000);
  signal.addEventListener("abort", () => clearInterval(timer));
  void refreshState();
  void loadProfiles();
}

function renderTest(r: TestConnectionResponse): HTMLElement {
  const target = `${r.address} as client ${r.clientId}${r.clientIdDerived ? " (derived, to spare the live session)" : ""}`;
  if (r.result.case === "success") {
    const s = r.result.value;
    return h(
      "div",
      { class: "ok", id: "test-ok" },
      h("strong", {}, "Connected"),
      ` to ${target}: gateway version ${s.serverVersion}, accounts ${s.managedAccounts.join(", ") || "–"}, round trip `,
      h("span", { class: "num", id: "test-rtt" }, `${fixed(millis(s.roundTripTime), 1)} ms`),
      ".",
    );
  }
  const f = r.result.case === "failure" ? r.result.value : undefined;
  return h(
    "div",
    { class: "error", id: "test-failed" },
    h("strong", {}, `Failed (${f ? TestConnectionFailure[f.reason] : "no answer"})`),
    ` at ${target}: ${f?.message ?? ""}`,
  );
}
