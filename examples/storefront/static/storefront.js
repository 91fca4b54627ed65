// Search as you type, straight from the browser to Searchgate, with a browser token
// that the storefront server derives for this page (the client key never comes here).
// The token is renewed before it expires and, whenever Searchgate refuses it (a key
// rotation deleted its parent key, or the computer slept past its expiry), renewed
// once and the request sent again, so the shopper never sees the refusal.
"use strict";

(() => {
  const form = document.getElementById("search");
  const input = document.getElementById("q");
  const list = document.getElementById("suggestions");
  const status = document.getElementById("suggest-status");
  const config = form.dataset;
  const TYPING_PAUSE_MS = 80;

  let token = null;
  let refreshAt = 0;
  let refreshTimer = null;
  let renewal = null; // {refused, promise} while a token request is out
  let latest = 0; // the number of the newest SAYT request: older answers are dropped
  let pause = null;
  let active = -1;

  async function requestToken(refused) {
    const url = config.tokenUrl + (refused ? "?refused=1" : "");
    const answer = await fetch(url, {
      method: "POST",
      headers: { Accept: "application/json" },
      cache: "no-store",
    });
    if (!answer.ok) {
      throw new Error(`the storefront answered ${answer.status} to a browser token request`);
    }
    const body = await answer.json();
    token = body.token;
    refreshAt = Date.now() + body.refreshInSeconds * 1000;
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => renew(false).catch(report), body.refreshInSeconds * 1000);
    return token;
  }

  // One token request at a time; one made after a refusal is not answered by an
  // ordinary one that was already out (the server checks its key only for the former).
  function renew(refused) {
    if (renewal && (renewal.refused || !refused)) return renewal.promise;
    const promise = requestToken(refused);
    const current = { refused, promise };
    renewal = current;
    const done = () => {
      if (renewal === current) renewal = null;
    };
    promise.then(done, done);
    return promise;
  }

  function sayt(query, credential) {
    const url = new URL("/api/v1/sayt/search", config.searchgate);
    url.search = new URLSearchParams({
      collection: config.collection,
      query,
      searchItems: "6",
      productItems: "4",
      navigationItems: "0",
    }).toString();
    return fetch(url, {
      headers: { Authorization: `Bearer ${credential}`, "X-Searchgate-System": config.system },
      cache: "no-store",
      credentials: "omit",
    });
  }

  async function suggestions(query) {
    if (!token || Date.now() >= refreshAt) await renew(false);
    const sent = token;
    let answer = await sayt(query, sent);
    if (answer.status === 401) {
      // Requests refused with the same token share one renewal; a second 401 is the answer.
      if (token === sent) await renew(true);
      answer = await sayt(query, token);
    }
    if (!answer.ok) throw new Error(`Searchgate answered ${answer.status} to search as you type`);
    return (await answer.json()).result;
  }

  function option(text, detail, kind, go) {
    const item = document.createElement("div");
    item.className = `option ${kind}`;
    item.setAttribute("role", "option");
    item.id = `suggestion-${list.children.length}`;
    const label = document.createElement("span");
    label.className = "label";
    label.textContent = text;
    item.append(label);
    if (detail) {
      const extra = document.createElement("span");
      extra.className = "detail";
      extra.textContent = detail;
      item.append(extra);
    }
    item.addEventListener("mousedown", (event) => event.preventDefault());
    item.addEventListener("click", () => go());
    list.append(item);
  }

  function searchFor(text) {
    input.value = text;
    form.submit();
  }

  function show(query, result) {
    list.replaceChildren();
    active = -1;
    input.removeAttribute("aria-activedescendant");
    for (const term of result.searchTerms) {
      option(term.value, "", "term", () => searchFor(term.value));
    }
    for (const product of result.products) {
      const meta = product.allMeta || {};
      const title = product._t || meta.title || product._id;
      const price = typeof meta.price === "number" ? meta.price.toFixed(2) : "";
      option(title, price, "product", () => searchFor(title));
    }
    const open = list.children.length > 0;
    list.hidden = !open;
    input.setAttribute("aria-expanded", String(open));
    list.dataset.query = query;
    status.textContent = "";
  }

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function report(error) {
    status.textContent = "Suggestions are unavailable right now.";
    console.error(`search as you type: ${error.message}`);
  }

  async function suggest() {
    const query = input.value.trim();
    const number = ++latest;
    if (!query) {
      close();
      return;
    }
    try {
      const result = await suggestions(query);
      if (number === latest) show(query, result);
    } catch (error) {
      if (number === latest) report(error);
    }
  }

  function move(step) {
    const items = list.children;
    if (list.hidden || items.length === 0) return;
    if (active >= 0) items[active].classList.remove("active");
    active = (active + step + items.length) % items.length;
    items[active].classList.add("active");
    input.setAttribute("aria-activedescendant", items[active].id);
  }

  input.addEventListener("input", () => {
    clearTimeout(pause);
    pause = setTimeout(suggest, TYPING_PAUSE_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      move(event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Escape") {
      close();
    } else if (event.key === "Enter" && active >= 0 && !list.hidden) {
      event.preventDefault();
      list.children[active].click();
    }
  });
  input.addEventListener("blur", close);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && token && Date.now() >= refreshAt) renew(false).catch(report);
  });

  renew(false).catch(report);
})();
