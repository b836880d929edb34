// Lifeline's one script. WebAuthn exists only as a JavaScript API, so the passkey pages (sign-in, your
// passkeys, adding one with an enrolment code) load this file and nothing else does; every page works without
// it, and so does password sign-in. It turns a passkey form's submit into: ask Lifeline for the ceremony's
// options (a same-origin POST with the form's CSRF token), ask the browser for a passkey, put the browser's
// answer into the form, submit the form. Lifeline checks everything; this file only carries bytes.
(function () {
  "use strict";

  function decode(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function encode(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(options) {
    var o = options.publicKey;
    o.challenge = decode(o.challenge);
    o.user.id = decode(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return { publicKey: o };
  }

  function requestOptions(options) {
    var o = options.publicKey;
    o.challenge = decode(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return { publicKey: o };
  }

  function registration(credential) {
    return {
      id: credential.id,
      rawId: encode(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: encode(credential.response.attestationObject),
        clientDataJSON: encode(credential.response.clientDataJSON)
      },
      extensions: {}
    };
  }

  function assertion(credential) {
    var r = credential.response;
    return {
      id: credential.id,
      rawId: encode(credential.rawId),
      type: credential.type,
      response: {
        authenticatorData: encode(r.authenticatorData),
        clientDataJSON: encode(r.clientDataJSON),
        signature: encode(r.signature),
        userHandle: r.userHandle && r.userHandle.byteLength ? encode(r.userHandle) : null
      },
      extensions: {}
    };
  }

  function say(form, text) {
    var status = form.querySelector("[data-passkey-status]");
    if (status) status.textContent = text;
  }

  function enable(form) {
    var register = form.getAttribute("data-passkey") === "register";
    var busy = false;
    form.addEventListener("submit", function (event) {
      if (form.elements.credential.value) return;
      event.preventDefault();
      if (busy) return;
      busy = true;
      say(form, "Waiting for your passkey…");
      var body = new URLSearchParams();
      body.set("csrf", form.elements.csrf.value);
      // Sign-in: the username typed in the password form, if any, names the account's passkeys.
      var login = document.getElementById("login");
      if (!register && login && login.value) body.set("login", login.value);
      fetch(form.getAttribute("data-options"), { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) {
          return response.json().then(function (data) {
            if (!response.ok) throw new Error(data.error || "Lifeline could not start the passkey step.");
            return data;
          });
        })
        .then(function (data) {
          form.elements.ceremony.value = data.ceremony;
          return register
            ? navigator.credentials.create(creationOptions(data.options)).then(registration)
            : navigator.credentials.get(requestOptions(data.options)).then(assertion);
        })
        .then(function (answer) {
          form.elements.credential.value = JSON.stringify(answer);
          say(form, "Checking…");
          form.submit();
        })
        .catch(function (error) {
          busy = false;
          var cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
          say(form, cancelled ? "No passkey was used. Try again, or use another way below." : error.message);
        });
    });
  }

  var forms = document.querySelectorAll("form[data-passkey]");
  for (var i = 0; i < forms.length; i++) {
    var form = forms[i];
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(form, "This browser cannot use passkeys. Sign in another way.");
      continue;
    }
    var explanation = form.querySelector("[data-passkey-nojs]");
    if (explanation) explanation.hidden = true;
    enable(form);
  }
})();
