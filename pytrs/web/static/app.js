// pytrs web view: small progressive enhancements only; every page works without it.
// No inline scripts anywhere (the Content-Security-Policy forbids them): page scripts go here.
"use strict";

document.addEventListener("click", (event) => {
  // Close an open <details class="menu"> when clicking elsewhere.
  for (const menu of document.querySelectorAll("details.menu[open]")) {
    if (!menu.contains(event.target)) menu.removeAttribute("open");
  }
});
