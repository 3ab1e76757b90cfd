// Orchard's GraphiQL page: GraphiQL, React and the explorer plugin are served by Orchard itself
// (nothing comes from another host; see graphiql.go). This script is the page's only code of
// our own, loaded from a file so that the Content-Security-Policy can forbid inline script.
//
// - The API key goes in the Headers tab: {"Authorization": "Bearer orch_..."}.
// - GraphiQL fetches the schema before its Headers editor exists, so it would send no key and
//   get 401: the fetcher below adds the Headers tab's Authorization to any request that lacks
//   it, and fetches the schema again when the key in the Headers tab changes.
// - Whether the key is remembered is the user's choice, the "Remember the key" checkbox under
//   the editors (off by default). Off, GraphiQL's state (the Headers tab with the key
//   included) lives in sessionStorage: it survives a reload and is forgotten with the tab. On,
//   it lives in localStorage, for this browser until the box is unticked (which moves it back
//   and wipes it from localStorage).
(function () {
  'use strict';
  const root = document.getElementById('graphiql');
  const endpoint = new URL(root.dataset.endpoint, location.href);
  const wsEndpoint = new URL(endpoint);
  wsEndpoint.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
  const placeholder = JSON.stringify({ Authorization: 'Bearer <paste your API key>' }, null, 2);

  // GraphiQL's storage, under Orchard's own prefix, in sessionStorage or (the key remembered)
  // localStorage.
  const prefix = 'orchard:';
  const rememberFlag = prefix + 'rememberKey';
  let remember = localStorage.getItem(rememberFlag) === 'true';
  const backing = () => (remember ? localStorage : sessionStorage);
  const ours = (st) => Object.keys(st).filter((k) => k.startsWith(prefix) && k !== rememberFlag);
  const storage = {
    getItem: (k) => backing().getItem(prefix + k),
    setItem: (k, v) => backing().setItem(prefix + k, v),
    removeItem: (k) => backing().removeItem(prefix + k),
    clear: () => {
      for (const k of ours(backing())) backing().removeItem(k);
    },
    get length() {
      return ours(backing()).length;
    },
  };
  // Moves GraphiQL's state to the other storage when the box changes; the one left is wiped.
  const setRemember = (on) => {
    if (on === remember) return;
    const from = backing();
    remember = on;
    const to = backing();
    for (const k of ours(from)) {
      to.setItem(k, from.getItem(k));
      from.removeItem(k);
    }
    if (on) localStorage.setItem(rememberFlag, 'true');
    else localStorage.removeItem(rememberFlag);
  };
  function RememberKey() {
    const [on, setOn] = React.useState(remember);
    return React.createElement('label', { className: 'orchard-remember', title: 'Off: the key is forgotten when this tab is closed. On: this browser keeps it until you untick this.' },
      React.createElement('input', {
        type: 'checkbox', id: 'orchard-remember', checked: on,
        onChange: (e) => { setRemember(e.target.checked); setOn(e.target.checked); },
      }),
      ' Remember the key in this browser');
  }

  // The Headers tab's text, as last edited (or as restored by GraphiQL when persisted).
  let headersText = storage.getItem('graphiql:headers') || placeholder;
  const authorizationOf = (text) => {
    try {
      const h = JSON.parse(text || '{}');
      for (const k of Object.keys(h)) if (k.toLowerCase() === 'authorization') return String(h[k]);
    } catch (e) {
      /* not JSON yet: the user is typing */
    }
    return '';
  };
  const isKey = (auth) => /^Bearer\s+orch_\S+$/.test(auth);

  // One GraphiQL fetcher per key: the WebSocket sends the key in connection_init.
  const fetchers = new Map();
  const fetcherFor = (auth) => {
    if (!fetchers.has(auth)) {
      fetchers.set(auth, GraphiQL.createFetcher({
        url: endpoint.href,
        subscriptionUrl: wsEndpoint.href,
        wsConnectionParams: auth ? { Authorization: auth } : {},
      }));
    }
    return fetchers.get(auth);
  };
  let introspectedWith = null; // the Authorization the schema was last fetched with
  const fetcher = (params, opts) => {
    const headers = Object.assign({}, opts && opts.headers);
    let auth = authorizationOf(JSON.stringify(headers));
    if (!auth) {
      auth = authorizationOf(headersText);
      if (auth) headers.Authorization = auth;
    }
    if (params && params.operationName === 'IntrospectionQuery') {
      introspectedWith = auth;
      if (!isKey(auth)) {
        // No key yet: asking would only earn a 401. The schema is fetched once one is there.
        return Promise.resolve({ errors: [{ message: 'Put your API key in the Headers tab: {"Authorization": "Bearer orch_..."}' }] });
      }
    }
    return fetcherFor(auth)(params, Object.assign({}, opts, { headers }));
  };

  // Fetches the schema again once the Headers tab holds a different key.
  let introspect = null;
  let timer = null;
  const onEditHeaders = (text) => {
    headersText = text;
    const auth = authorizationOf(text);
    if (!introspect || !isKey(auth) || auth === introspectedWith) return;
    clearTimeout(timer);
    timer = setTimeout(() => introspect(), 400);
  };
  function SchemaRefresh() {
    introspect = GraphiQL.React.useSchemaStore().introspect;
    return null;
  }

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher,
      storage,
      headers: headersText,
      onEditHeaders,
      isHeadersEditorEnabled: true,
      // Persisted to storage, which is sessionStorage unless the key is remembered.
      shouldPersistHeaders: true,
      showPersistHeadersSettings: false,
      inputValueDeprecation: true,
      defaultQuery: '# Put your API key in the Headers tab below, then run this with the ▶ button.\n{\n  viewer {\n    role\n    apiKey { name }\n  }\n}\n',
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    }, React.createElement(GraphiQL.Footer, null, React.createElement(SchemaRefresh), React.createElement(RememberKey))),
  );
})();
