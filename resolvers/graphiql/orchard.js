// Orchard's GraphiQL page: GraphiQL, React and the explorer plugin are served by Orchard itself
// (nothing comes from another host; see graphiql.go). This script is the page's only code of
// our own, loaded from a file so that the Content-Security-Policy can forbid inline script.
//
// - The API key goes in the Headers tab: {"Authorization": "Bearer orch_..."}.
// - GraphiQL fetches the schema before its Headers editor exists, so it would send no key and
//   get 401: the fetcher below adds the Headers tab's Authorization to any request that lacks
//   it, and fetches the schema again when the key in the Headers tab changes.
// - Whether the key is remembered is the user's choice: GraphiQL's settings ("Persist headers",
//   off by default) keep the headers in this browser's localStorage; off, they are forgotten
//   when the page is closed.
(function () {
  'use strict';
  const root = document.getElementById('graphiql');
  const endpoint = new URL(root.dataset.endpoint, location.href);
  const wsEndpoint = new URL(endpoint);
  wsEndpoint.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
  const placeholder = JSON.stringify({ Authorization: 'Bearer <paste your API key>' }, null, 2);

  // GraphiQL's storage, under Orchard's own prefix.
  const prefix = 'orchard:';
  const storage = {
    getItem: (k) => localStorage.getItem(prefix + k),
    setItem: (k, v) => localStorage.setItem(prefix + k, v),
    removeItem: (k) => localStorage.removeItem(prefix + k),
    clear: () => {
      for (const k of Object.keys(localStorage)) if (k.startsWith(prefix)) localStorage.removeItem(k);
    },
    get length() {
      return Object.keys(localStorage).filter((k) => k.startsWith(prefix)).length;
    },
  };

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
      shouldPersistHeaders: false,
      showPersistHeadersSettings: true,
      inputValueDeprecation: true,
      defaultQuery: '# Put your API key in the Headers tab below, then run this with the ▶ button.\n{\n  viewer {\n    role\n    apiKey { name }\n  }\n}\n',
      plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    }, React.createElement(GraphiQL.Footer, null, React.createElement(SchemaRefresh))),
  );
})();
