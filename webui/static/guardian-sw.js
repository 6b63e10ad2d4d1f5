// The portal's service worker: shows a push as a notification and opens its message page when tapped.
"use strict";
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = {}; }
  var title = (data.emergency ? "【緊急】" : "") + (data.title || "連絡網");
  event.waitUntil(self.registration.showNotification(title, {
    body: data.body || "", tag: data.tag || undefined, data: {url: data.url || "/p/"},
    requireInteraction: Boolean(data.emergency)
  }));
});
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
