// The virtual keyboard of a self-composed plate number (seed 004).
// Keys come from the server in this session's shuffled order, each enabled only
// if it still leads to an available number; the number is submitted when the
// window closes, never earlier (the server voids an early submission).
(function () {
  "use strict";
  var root = document.getElementById("composer");
  if (!root) return;
  var length = parseInt(root.dataset.length, 10);
  var deadline = Date.now() + parseFloat(root.dataset.seconds) * 1000 + 500;
  var keyboard = document.getElementById("keyboard");
  var out = document.getElementById("composed");
  var verdict = document.getElementById("verdict");
  var seconds = document.getElementById("seconds");
  var csrf = document.querySelector("#submit-form input[name=csrfmiddlewaretoken]").value;
  var composed = "";
  var submitted = false;

  function render(keys) {
    keyboard.textContent = "";
    keys.forEach(function (key) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "key";
      button.dataset.char = key.char;
      button.textContent = key.char;
      button.disabled = !key.enabled;
      keyboard.appendChild(button);
    });
  }

  function show() {
    out.textContent = composed;
    root.dataset.composed = composed;
  }

  function load() {
    if (composed.length >= length) {
      keyboard.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
      return Promise.resolve();
    }
    keyboard.setAttribute("aria-busy", "true");
    return fetch(root.dataset.keysUrl + "?prefix=" + encodeURIComponent(composed), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (r) { return r.json().then(function (body) { return [r.ok, body]; }); })
      .then(function (result) {
        if (result[0]) render(result[1].keys);
        else verdict.textContent = result[1].message;
      })
      .finally(function () { keyboard.removeAttribute("aria-busy"); });
  }

  keyboard.addEventListener("click", function (event) {
    var button = event.target.closest("button.key");
    if (!button || button.disabled || composed.length >= length) return;
    composed += button.dataset.char;
    show();
    load();
  });

  document.getElementById("clear").addEventListener("click", function () {
    composed = "";
    verdict.textContent = "";
    show();
    load();
  });

  // 「验证」 needs the image code; every answer brings the next image.
  var captcha = document.getElementById("verify-captcha");
  var captchaKey = captcha.querySelector("input.captcha-key");
  var captchaInput = captcha.querySelector("input[name=captcha]");
  var captchaImage = captcha.querySelector("img.captcha-image");

  document.getElementById("verify").addEventListener("click", function () {
    var body = new URLSearchParams({
      serial: composed,
      captcha_key: captchaKey.value,
      captcha: captchaInput.value,
    });
    fetch(root.dataset.verifyUrl, {
      method: "POST",
      body: body,
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (r) { return r.json(); })
      .then(function (result) {
        var issues = (result.errors || []).map(function (e) { return e.message; });
        verdict.textContent = [result.message].concat(issues).join(" ");
        verdict.dataset.available = result.available ? "yes" : "no";
        if (result.captcha) {
          captchaKey.value = result.captcha.key;
          captchaImage.src = result.captcha.image_url;
          captchaInput.value = "";
        }
      });
  });

  function tick() {
    var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    seconds.textContent = left;
    if (Date.now() >= deadline) {
      if (!submitted) {
        submitted = true;
        document.getElementById("serial").value = composed;
        document.getElementById("submit-form").submit();
      }
      return;
    }
    window.setTimeout(tick, 200);
  }
  tick();
})();
