// A stand-in for an analytics library's browser snippet (Segment's analytics.js, ThriveStack's,
// RudderStack's…): the same three calls the hand-off needs, so the example runs with nothing
// to install. Replace this file's <script> with your vendor's snippet; app.js does not change.
//
//   analytics.user().anonymousId()  the visitor's anonymous id (kept in localStorage and the
//                                   `ajs_anonymous_id` cookie, as analytics.js keeps it)
//   analytics.identify(userId, traits)
//   analytics.reset()               forget the user and start a new anonymous id (at sign-out)
//
// Every call is also appended to the page's "Analytics calls" list and to window.analyticsCalls.
(function () {
  if (window.analytics && window.analytics.identify) return; // a real snippet is loaded
  var KEY = "ajs_anonymous_id";
  var calls = (window.analyticsCalls = []);

  function newId() {
    return crypto.randomUUID ? crypto.randomUUID()
      : ([1e7] + -1e3 + -4e3 + -8e3 + -1e11).replace(/[018]/g, function (c) {
          return (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16);
        });
  }
  function remember(id) {
    localStorage.setItem(KEY, id);
    // A host-wide cookie, as analytics.js sets it: the bridge also reads `ajs_anonymous_id`
    // when /login is given no anonymous_id (same host, any port).
    document.cookie = KEY + "=" + encodeURIComponent(id) + "; path=/; SameSite=Lax";
    return id;
  }
  function anonymousId() {
    return localStorage.getItem(KEY) || remember(newId());
  }
  function record(call) {
    calls.push(call);
    var list = document.getElementById("calls");
    if (list) {
      var item = document.createElement("li");
      item.textContent = JSON.stringify(call);
      list.appendChild(item);
    }
  }

  window.analytics = {
    user: function () { return { anonymousId: anonymousId }; },
    identify: function (userId, traits) {
      record({ type: "identify", userId: userId, anonymousId: anonymousId(), traits: traits || {} });
    },
    reset: function () {
      record({ type: "reset", anonymousId: anonymousId() });
      remember(newId());
    },
  };
})();
