// Keyledger GraphQL console bootstrap (kept out of index.html so a strict
// `script-src 'self'` Content-Security-Policy works without 'unsafe-inline').
(function () {
  'use strict';

  var TOKEN_PLACEHOLDER = 'Bearer <token>';

  var DEFAULT_HEADERS = JSON.stringify({ Authorization: TOKEN_PLACEHOLDER }, null, 2);

  var DEFAULT_QUERY = [
    '# Welcome to the Keyledger GraphQL console.',
    '#',
    '# Authentication: open the "Headers" tab below',
    '# and replace <token> with an admin API token:',
    '#',
    '#   { "Authorization": "Bearer <your token>" }',
    '#',
    '# The schema (docs, autocompletion) loads without',
    '# a token; every query and mutation needs one.',
    '#',
    '# While the placeholder is unchanged, no',
    '# Authorization header is sent. Headers are not',
    '# persisted and are lost on page reload.',
    '#',
    '# Run a query with Ctrl-Enter (Cmd-Enter on macOS).',
    '',
    'query FirstLook {',
    '  me { tenant permissions }',
    '  apiKeys(limit: 10) {',
    '    data { id name prefix status scopes expiresAt }',
    '    nextCursor',
    '  }',
    '}',
    '',
  ].join('\n');

  // Drop the Authorization header while it still holds the placeholder, so the
  // server never sees a bogus "Bearer <token>" credential.
  function stripPlaceholder(headers) {
    var out = {};
    if (!headers) return out;
    Object.keys(headers).forEach(function (k) {
      if (k.toLowerCase() === 'authorization' && String(headers[k]).trim() === TOKEN_PLACEHOLDER) return;
      out[k] = headers[k];
    });
    return out;
  }

  function consoleFetch(url, init) {
    init = Object.assign({}, init || {});
    init.headers = stripPlaceholder(init.headers);
    init.credentials = 'same-origin';
    return window.fetch(url, init);
  }

  var wsProtocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';

  var fetcher = GraphiQL.createFetcher({
    url: '/graphql',
    subscriptionUrl: wsProtocol + '//' + window.location.host + '/graphql/ws',
    fetch: consoleFetch,
  });

  // Headers typed in the editor are also sent as graphql-ws connection params;
  // strip the placeholder there too.
  var graphiqlFetcher = function (params, opts) {
    if (opts && opts.headers) {
      opts = Object.assign({}, opts, { headers: stripPlaceholder(opts.headers) });
    }
    return fetcher(params, opts);
  };

  var container = document.getElementById('graphiql');
  container.textContent = '';
  container.style.height = '100vh';
  document.body.style.margin = '0';

  var root = ReactDOM.createRoot(container);
  root.render(
    React.createElement(GraphiQL, {
      fetcher: graphiqlFetcher,
      defaultQuery: DEFAULT_QUERY,
      defaultHeaders: DEFAULT_HEADERS,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: false,
      defaultEditorToolsVisibility: 'headers',
    }),
  );
})();
