// chat-store's web client: plain ES module on the REST API (/v1/sessions…), server-sent
// events for replies and the live WebSocket (/v1/sync/live) for changes made elsewhere.
// All text goes into the page with textContent: nothing the server returns is parsed as HTML.

const $ = (id) => document.getElementById(id);
const state = { token: null, sessions: [], current: null, streaming: false, live: null, liveRetry: 500, refreshTimer: null,
                unsent: new Map(), generation: 0 }; // session id → bubbles of messages that failed to send, kept across re-renders

// MARK: API

class APIError extends Error {
  constructor(status, code, message, body) { super(message); this.status = status; this.code = code; this.body = body; }
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: { Authorization: `Bearer ${state.token}`, Accept: "application/json",
                 ...(body ? { "Content-Type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new APIError(0, "unreachable", "Cannot reach the server; check your connection and try again.");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const message = data?.error?.message ?? (typeof data?.error === "string" ? data.error : response.statusText);
    throw new APIError(response.status, data?.error?.code ?? `http_${response.status}`, message, data);
  }
  return data;
}

// MARK: Sign-in

async function signIn(token) {
  state.token = token;
  const me = await api("GET", "/v1/me");
  sessionStorage.setItem("chat-store-token", token);
  $("whoami").textContent = me.name;
  $("signin").hidden = true;
  $("app").hidden = false;
  await loadSessions();
  connectLive();
  return me;
}

function signOut(message) {
  sessionStorage.removeItem("chat-store-token");
  state.token = null;
  state.current = null;
  state.sessions = [];
  if (state.live) { state.live.onclose = null; state.live.close(); state.live = null; }
  $("app").hidden = true;
  $("signin").hidden = false;
  $("session-list").replaceChildren();
  $("messages").replaceChildren();
  const error = $("signin-error");
  error.hidden = !message;
  error.textContent = message ?? "";
  $("token").value = "";
  $("token").focus();
}

// MARK: Sessions

async function loadSessions() {
  const page = await api("GET", "/v1/sessions?limit=200");
  state.sessions = page.items;
  renderSessions();
}

function renderSessions() {
  const list = $("session-list");
  list.replaceChildren(...state.sessions.map((session) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.id = session.id;
    button.textContent = session.title || "Untitled";
    button.setAttribute("aria-current", String(session.id === state.current?.id));
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = `${session.model} · ${timeAgo(session.lastActiveAt ?? session.createdAt)}`;
    button.append(meta);
    button.addEventListener("click", () => openSession(session.id));
    item.append(button);
    return item;
  }));
}

async function openSession(id) {
  // A newer render (another open, or a send that started meanwhile) wins: this one stops
  // after any await at which it finds itself superseded, so it never wipes a streaming reply.
  const generation = ++state.generation;
  const detail = await api("GET", `/v1/sessions/${encodeURIComponent(id)}?limit=100`);
  if (generation !== state.generation) return;
  showThreadError(null);
  state.current = detail;
  $("thread-title").textContent = detail.title || "Untitled";
  $("thread-actions").hidden = false;
  $("composer").hidden = false;
  $("archive").textContent = detail.archived ? "Unarchive" : "Archive";
  renderSessions();
  const box = $("messages");
  box.replaceChildren(...detail.messages.items.map(renderMessage));
  // Later pages arrive one at a time, each rendered before the next is asked for, so a long
  // history never blocks the page.
  let cursor = detail.messages.nextCursor;
  while (cursor && state.current?.id === id) {
    const page = await api("GET", `/v1/sessions/${encodeURIComponent(id)}/messages?limit=100&cursor=${encodeURIComponent(cursor)}`);
    await new Promise(requestAnimationFrame);
    if (generation !== state.generation) return;
    box.append(...page.items.map(renderMessage));
    cursor = page.nextCursor;
  }
  box.append(...(state.unsent.get(id) ?? []));
  box.scrollTop = box.scrollHeight;
  $("composer-input").focus();
}

async function newSession() {
  const session = await api("POST", "/v1/sessions", { title: "New chat" });
  await loadSessions();
  await openSession(session.id);
}

async function renameSession() {
  const title = prompt("New title", state.current.title ?? "");
  if (title === null) return;
  await api("PATCH", `/v1/sessions/${encodeURIComponent(state.current.id)}`, { title });
  await loadSessions();
  await openSession(state.current.id);
}

async function toggleArchive() {
  const archived = !state.current.archived;
  await api("PATCH", `/v1/sessions/${encodeURIComponent(state.current.id)}`, { archived });
  await loadSessions();
  if (archived) clearThread("Archived. It stays on your devices and syncs; open it again from a device or restore it there.");
  else await openSession(state.current.id);
}

async function deleteSession() {
  if (!confirm("Delete this chat and all its messages on every device?")) return;
  await api("DELETE", `/v1/sessions/${encodeURIComponent(state.current.id)}`);
  await loadSessions();
  clearThread("Deleted.");
}

function clearThread(note) {
  state.current = null;
  $("thread-title").textContent = note ?? "Select or start a chat";
  $("thread-actions").hidden = true;
  $("composer").hidden = true;
  $("messages").replaceChildren();
  renderSessions();
}

// MARK: Messages

function renderMessage(message) {
  const box = document.createElement("article");
  box.className = `message ${message.role}`;
  box.dataset.id = message.id ?? "";
  if (message.status === "error") box.classList.add("failed");
  const role = document.createElement("div");
  role.className = "role";
  const who = document.createElement("span");
  who.textContent = message.role;
  const when = document.createElement("span");
  when.textContent = message.status === "complete" ? timeAgo(message.createdAt) : message.status;
  role.append(who, when);
  box.append(role);
  for (const part of message.parts ?? []) box.append(renderPart(part));
  if (message.error?.message) box.append(textBlock("error", message.error.message));
  if (message.usage?.totalTokens) {
    const usage = document.createElement("div");
    usage.className = "artifact";
    usage.textContent = `${message.usage.promptTokens ?? 0} prompt + ${message.usage.completionTokens ?? 0} completion tokens`
      + (message.latencyMs ? ` · ${message.latencyMs} ms` : "");
    box.append(usage);
  }
  return box;
}

function renderPart(part) {
  switch (part.type) {
    case "text": return textBlock("text", part.content?.text ?? "");
    case "reasoning": {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = "Reasoning";
      details.append(summary, textBlock("text", part.content?.text ?? ""));
      return details;
    }
    case "tool_call":
    case "tool_result": {
      const tool = document.createElement("div");
      tool.className = "tool";
      const head = document.createElement("div");
      head.textContent = `${part.type === "tool_call" ? "Tool call" : "Tool result"}: ${part.toolName ?? "?"}`
        + (part.toolDurationMs != null ? ` (${part.toolDurationMs} ms)` : "");
      const body = document.createElement("pre");
      const value = part.type === "tool_call" ? part.content?.args : part.content?.result;
      body.textContent = typeof value === "string" ? value : JSON.stringify(value ?? part.content, null, 2);
      tool.append(head, body);
      if (part.artifact) {
        const artifact = document.createElement("div");
        artifact.className = "artifact";
        artifact.textContent = `Artifact: ${part.artifact.kind} ${part.artifact.path ?? ""}`
          + (part.artifact.size != null ? ` · ${part.artifact.size} bytes` : "");
        tool.append(artifact);
      }
      return tool;
    }
    case "error": return textBlock("error", part.content?.message ?? "The reply failed.");
    default: return textBlock("artifact", `[${part.type}]`);
  }
}

function textBlock(className, text) {
  const block = document.createElement("div");
  block.className = className;
  block.textContent = text;
  return block;
}

// MARK: Sending, with the reply streamed in

async function send(content) {
  state.generation += 1; // a render still in flight must not replace what follows
  const session = state.current;
  const box = $("messages");
  const mine = renderMessage({ role: "user", status: "sending", parts: [{ type: "text", content: { text: content } }] });
  box.append(mine);
  const reply = renderMessage({ role: "assistant", status: "pending", parts: [] });
  const text = textBlock("text typing", "");
  reply.append(text);
  box.append(reply);
  box.scrollTop = box.scrollHeight;
  state.streaming = true;
  $("send").disabled = true;
  try {
    const response = await fetch(`/v1/sessions/${encodeURIComponent(session.id)}/messages`, {
      method: "POST",
      headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream", "Content-Type": "application/json" },
      body: JSON.stringify({ content }),
    }).catch(() => { throw new APIError(0, "unreachable", "Cannot reach the server; your message was not sent. Try again."); });
    if (!response.ok) {
      const data = await response.json().catch(() => null);
      throw new APIError(response.status, data?.error?.code ?? `http_${response.status}`,
                         data?.error?.message ?? (typeof data?.error === "string" ? data.error : response.statusText), data);
    }
    mine.querySelector(".role span:last-child").textContent = "sent";
    state.unsent.delete(session.id);
    let final = null;
    for await (const event of serverSentEvents(response)) {
      if (event.name === "delta" && event.data.type === "text") {
        text.textContent += event.data.text;
        box.scrollTop = box.scrollHeight;
      } else if (event.name === "done" || event.name === "error") {
        final = event;
      }
    }
    if (final?.data?.message) reply.replaceWith(renderMessage(final.data.message));
    if (final?.name === "error") showThreadError(`The model provider failed: ${final.data.error?.message ?? "unknown error"}. The reply is kept as failed.`);
    if (!final) showThreadError("The reply stream ended early; it is still being written and will appear when it is done.");
  } catch (error) {
    reply.remove();
    mine.classList.add("failed");
    mine.querySelector(".role span:last-child").textContent = "not sent";
    state.unsent.set(session.id, [...(state.unsent.get(session.id) ?? []), mine]);
    handleSendError(error, content);
  } finally {
    text.classList.remove("typing");
    state.streaming = false;
    $("send").disabled = false;
    loadSessions().catch(() => {});
  }
}

function handleSendError(error, content) {
  if (error.status === 401) return signOut("The server no longer accepts this token; sign in again.");
  $("composer-input").value = content;
  if (error.status === 402) {
    const offers = error.body?.accepts ?? [];
    showThreadError("Your balance is too low for a reply. Top up with one of these amounts (x402, POST /v1/billing/top-up):",
      offers.map((offer) => `$${(Number(offer.maxAmountRequired) / 1e6).toFixed(2)} on ${offer.network}`));
    return;
  }
  showThreadError(error.message);
}

async function* serverSentEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { name, data: JSON.parse(data.join("\n")) };
    }
  }
}

function showThreadError(message, items = []) {
  const banner = $("thread-error");
  banner.hidden = !message;
  banner.replaceChildren();
  if (!message) return;
  banner.append(document.createTextNode(message));
  if (items.length) {
    const list = document.createElement("ul");
    list.className = "offers";
    list.append(...items.map((item) => { const li = document.createElement("li"); li.textContent = item; return li; }));
    banner.append(list);
  }
}

// MARK: Live changes from other devices

function connectLive() {
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/sync/live`;
  // Browsers cannot set headers on a WebSocket: the token travels as a subprotocol.
  const socket = new WebSocket(url, ["chat-store", `chat-store.bearer.${state.token}`]);
  state.live = socket;
  socket.onopen = () => { state.liveRetry = 500; setLive(true); };
  socket.onmessage = () => scheduleRefresh();
  socket.onclose = () => {
    setLive(false);
    if (!state.token) return;
    setTimeout(() => state.token && connectLive(), state.liveRetry);
    state.liveRetry = Math.min(state.liveRetry * 2, 30000);
  };
}

function setLive(on) {
  const badge = $("live-status");
  badge.textContent = on ? "live" : "offline";
  badge.classList.toggle("on", on);
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(async () => {
    if (state.streaming) return scheduleRefresh();
    await loadSessions().catch(() => {});
    if (state.current && state.sessions.some((s) => s.id === state.current.id)) await openSession(state.current.id).catch(() => {});
    else if (state.current && !state.current.archived) clearThread("This chat was deleted or archived on another device.");
  }, 150);
}

// MARK: Wiring

function timeAgo(millis) {
  if (!millis) return "";
  const seconds = Math.max(0, (Date.now() - millis) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(millis).toLocaleDateString();
}

function withErrors(action) {
  return async (...args) => {
    try { await action(...args); } catch (error) {
      if (error.status === 401) signOut("The server no longer accepts this token; sign in again.");
      else showThreadError(error.message);
    }
  };
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  $("theme-toggle").textContent = theme === "dark" ? "☀" : "☾";
  localStorage.setItem("chat-store-theme", theme);
}

document.addEventListener("DOMContentLoaded", () => {
  applyTheme(localStorage.getItem("chat-store-theme") ?? "dark");
  $("theme-toggle").addEventListener("click", () => applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    try { await signIn(token); } catch (error) {
      signOut(error.status === 401 ? "The server refused that token. Check it, or issue a new one with chat-server create-token."
                                   : error.message);
    }
  });
  $("signout").addEventListener("click", () => signOut(null));
  $("new-session").addEventListener("click", withErrors(newSession));
  $("rename").addEventListener("click", withErrors(renameSession));
  $("archive").addEventListener("click", withErrors(toggleArchive));
  $("delete").addEventListener("click", withErrors(deleteSession));
  const input = $("composer-input");
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const content = input.value;
    if (!content.trim() || state.streaming || !state.current) return;
    input.value = "";
    showThreadError(null);
    send(content);
  });
  const saved = sessionStorage.getItem("chat-store-token");
  if (saved) signIn(saved).catch(() => signOut("Sign in again."));
  else signOut(null);
});
