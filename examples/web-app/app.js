// The hand-off between identify-bridge and a web app's analytics, in three steps:
//
// 1. Sign-in: link to the bridge's /login/{provider} with `return_to` (this page) and the
//    analytics library's anonymous id. The bridge sends the identify call to every sink with
//    that `anonymous_id` and the user's `user_id`, so analytics can join the visitor's
//    anonymous history to the user.
// 2. Back on this page: GET {bridge}/me with the session cookie (CORS with credentials; this
//    page's origin must be in the bridge's `server.allowed_return_origins`) and call
//    analytics.identify with the same `user_id`. `first_sign_in` says whether this sign-in
//    created the profile (e.g. to show onboarding); `session_expires_at` when the session ends.
// 3. Sign-out: analytics.reset() (a new anonymous id for whoever uses the browser next), then
//    the bridge's /logout page, which comes back here.
(function () {
  var params = new URLSearchParams(location.search);
  function meta(name) {
    var tag = document.querySelector('meta[name="' + name + '"]');
    return tag ? tag.content : "";
  }
  var bridge = (params.get("bridge") || meta("identify-bridge")).replace(/\/+$/, "");
  var provider = params.get("provider") || meta("identify-bridge-provider");
  var here = location.origin + location.pathname + location.search;
  var $ = function (id) { return document.getElementById(id); };

  $("anonymous-id").textContent = analytics.user().anonymousId();

  function showSignedOut(message) {
    $("status").textContent = message;
    $("signed-out").hidden = false;
    $("sign-in").href = bridge + "/login/" + encodeURIComponent(provider)
      + "?return_to=" + encodeURIComponent(here)
      + "&anonymous_id=" + encodeURIComponent(analytics.user().anonymousId());
  }

  function showSignedIn(me) {
    $("status").textContent = "Signed in as " + (me.name || me.email || me.user_id) + ".";
    $("user-id").textContent = me.user_id;
    $("email").textContent = me.email || "—";
    $("first-sign-in").textContent = me.first_sign_in ? "yes: this sign-in created the profile" : "no";
    $("session-expires").textContent = new Date(me.session_expires_at).toLocaleString();
    $("signed-in").hidden = false;
    // The same user id the bridge sent to the sinks, with the traits it resolved.
    analytics.identify(me.user_id, Object.assign({ email: me.email, name: me.name }, me.traits));
  }

  $("sign-out").addEventListener("click", function () {
    analytics.reset();
    location.href = bridge + "/logout?return_to=" + encodeURIComponent(here);
  });

  fetch(bridge + "/me", { credentials: "include", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (response.status === 401) return showSignedOut("You are not signed in.");
      if (!response.ok) throw new Error("the bridge answered " + response.status);
      return response.json().then(showSignedIn);
    })
    .catch(function (error) {
      showSignedOut("Could not reach the bridge at " + bridge + " (" + error.message + ").");
    });
})();
