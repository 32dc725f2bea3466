// Sign up and sign in. A wrong key or an unknown email is said in plain words.
import { ApiError, call, clearSession, saveSession } from "../api.js";
import { errorNotice, field, h, notice, replace } from "../ui.js";

/** The gateway's 401 as a sentence about the credential that is wrong. */
export function signInError(error, email) {
  if (error.status === 401 && /no account/i.test(error.message)) {
    return new ApiError(401, `There is no account for ${email}.`,
      "Check the email address, or sign up below to create an account.");
  }
  if (error.status === 401) {
    return new ApiError(401, `That api key does not match the account ${email}.`,
      "Paste the api key you were given when you signed up (it is case-sensitive).");
  }
  return error;
}

export function signInPage({ go }) {
  const messages = h("div", { class: "messages", "aria-live": "polite" });
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const apiKey = h("input", { type: "password", name: "api_key", autocomplete: "current-password", required: true });
  const algorithm = h("select", { name: "algorithm" },
    h("option", { value: "sha1" }, "HMAC-SHA1 (Megam's original)"),
    h("option", { value: "sha256" }, "HMAC-SHA256"));
  const signIn = h("form", { class: "card", "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, "Sign in"),
    field("Email", email),
    field("API key", apiKey, "Kept in this tab only (sessionStorage); it is gone when you close the tab."),
    field("Signature", algorithm),
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  signIn.addEventListener("submit", async (event) => {
    event.preventDefault();
    const session = { email: email.value.trim().toLowerCase(), apiKey: apiKey.value.trim(), algorithm: algorithm.value };
    try {
      await call("POST", "/v1/auth", { session });
      saveSession(session.email, session.apiKey, session.algorithm);
      go("#/nodes");
    } catch (error) {
      replace(messages, errorNotice(signInError(error, session.email)));
    }
  });

  const newEmail = h("input", { type: "email", name: "new_email", autocomplete: "email", required: true });
  const signUp = h("form", { class: "card", "aria-labelledby": "signup-title" },
    h("h2", { id: "signup-title" }, "Sign up"),
    field("Email", newEmail),
    h("button", { type: "submit" }, "Create account"));
  signUp.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const account = await call("POST", "/v1/accounts/content",
        { open: true, body: { email: newEmail.value.trim().toLowerCase() } });
      saveSession(account.email, account.api_key);
      replace(messages, notice("ok", `Account ${account.email} created. You are signed in.`,
        "Your api key is below: copy it now, you need it to sign in again and for the megam CLI."),
      h("p", {}, h("code", { class: "api-key", "data-testid": "new-api-key" }, account.api_key)),
      h("p", {}, h("a", { href: "#/clouds", class: "button primary" }, "Next: add a cloud")));
    } catch (error) {
      replace(messages, errorNotice(error));
    }
  });
  clearSession();
  return h("section", { class: "page signin" }, h("h1", {}, "Welcome to Megam"),
    messages, h("div", { class: "columns" }, signIn, signUp));
}
