// The console's shell: asks for an API key when the server has keys, shows the pages the
// key's scope allows, and routes by the URL's hash (#/status, #/quotes …).
import { access, apiKey, describe, isAdmin, isUnauthenticated, loadAccess, setApiKey } from "./api";
import { AccessScope } from "./gen/ibstream/v1/connection_pb";
import { fill, h } from "./dom";
import { chainPage } from "./pages/chain";
import { quotesPage } from "./pages/quotes";
import { settingsPage } from "./pages/settings";
import { statusPage } from "./pages/status";
import { subscriptionsPage } from "./pages/subscriptions";

interface Page {
  path: string;
  title: string;
  admin: boolean;
  render: (root: HTMLElement, signal: AbortSignal) => void;
}

const PAGES: Page[] = [
  { path: "status", title: "Status", admin: false, render: statusPage },
  { path: "quotes", title: "Quotes", admin: false, render: quotesPage },
  { path: "chain", title: "Option chain", admin: false, render: chainPage },
  { path: "subscriptions", title: "Subscriptions", admin: false, render: subscriptionsPage },
  { path: "settings", title: "Settings", admin: true, render: settingsPage },
];

const main = document.getElementById("main") as HTMLElement;
const nav = document.getElementById("nav") as HTMLElement;
const who = document.getElementById("who") as HTMLElement;
let current: AbortController | undefined;

function visible(): Page[] {
  return PAGES.filter((p) => !p.admin || isAdmin());
}

function route(): void {
  const path = location.hash.replace(/^#\/?/, "") || "status";
  const page = visible().find((p) => p.path === path) ?? visible()[0];
  current?.abort();
  current = new AbortController();
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.path === page.path) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${page.title} · ibstream`;
  main.replaceChildren();
  page.render(main, current.signal);
}

function renderShell(): void {
  fill(nav, ...visible().map((p) => h("a", { href: `#/${p.path}`, "data-path": p.path }, p.title)));
  const scope = access?.scope === AccessScope.ADMIN ? "admin" : "read";
  fill(
    who,
    access?.keysRequired ? `${access.keyName || access.keyId} (${scope})` : "no API keys (local admin)",
    access?.keysRequired
      ? h("button", { type: "button", class: "link", onclick: () => { setApiKey(null); location.reload(); } }, "Forget key")
      : null,
  );
}

/** The key form; resolves once a key the server accepts is stored. */
function askForKey(problem?: string): void {
  current?.abort();
  const input = h("input", { name: "api_key", id: "api-key", type: "password", autocomplete: "off", required: true }) as HTMLInputElement;
  const error = h("p", { class: "error", role: "alert", id: "api-key-error" }, problem ?? "");
  input.setAttribute("aria-describedby", "api-key-error");
  fill(nav);
  fill(who);
  fill(
    main,
    h("h1", {}, "API key"),
    h("p", {}, "This server needs an API key. It is kept for this browser tab only and sent with every call."),
    h(
      "form",
      {
        class: "inline",
        onsubmit: (e: Event) => {
          e.preventDefault();
          setApiKey(input.value.trim());
          void start();
        },
      },
      h("label", { for: "api-key" }, "API key"),
      input,
      h("button", { type: "submit" }, "Use key"),
    ),
    error,
  );
  input.focus();
}

async function start(): Promise<void> {
  try {
    await loadAccess();
  } catch (err) {
    if (isUnauthenticated(err) || (apiKey() && /PermissionDenied|Unauthenticated/.test(describe(err)))) {
      const problem = apiKey() ? `The key was refused: ${describe(err)}` : undefined;
      setApiKey(null);
      askForKey(problem);
    } else {
      fill(main, h("h1", {}, "Cannot reach ibstream"), h("p", { class: "error", role: "alert" }, describe(err)), h("button", { type: "button", onclick: () => void start() }, "Try again"));
    }
    return;
  }
  renderShell();
  route();
}

window.addEventListener("hashchange", () => {
  route();
  // Keyboard and screen-reader users land on the page they chose.
  main.focus();
});
void start();
