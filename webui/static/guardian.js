// Push registration on the portal's device page: the only script guardians' pages load.
// Without it (or without Push support) the page still lists and removes devices.
(function () {
  "use strict";
  var form = document.getElementById("push-form");
  if (!form || !("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    return;
  }
  document.getElementById("push-unsupported").hidden = true;
  form.hidden = false;

  function keyBytes(base64url) {
    var text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "==".slice(0, (4 - base64url.length % 4) % 4));
    return Uint8Array.from(text, function (c) { return c.charCodeAt(0); });
  }

  form.addEventListener("submit", function (event) {
    if (form.elements.subscription.value) { return; }
    event.preventDefault();
    Notification.requestPermission().then(function (permission) {
      if (permission !== "granted") { throw new Error("permission"); }
      return navigator.serviceWorker.register(form.dataset.sw, {scope: "/p/"});
    }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      return registration.pushManager.subscribe({userVisibleOnly: true,
                                                 applicationServerKey: keyBytes(form.dataset.key)});
    }).then(function (subscription) {
      form.elements.subscription.value = JSON.stringify(subscription.toJSON());
      form.submit();
    }).catch(function () {
      document.getElementById("push-unsupported").hidden = false;
    });
  });
})();
