/* OpenKMS console behaviours, declared in the markup with data attributes and delegated on document.

   Served under a CSP of script-src 'self' and style-src 'self': nothing here evaluates text as code,
   injects a script, or writes an inline style; elements are shown and hidden with the `hidden`
   attribute. Every behaviour is an enhancement: the pages work (the server checks everything again)
   without it.

   data-open-dialog="ID"   on a button: opens <dialog id=ID> as a modal.
   data-close-dialog       on a button: closes the dialog it is in.
   data-copy="ID"          on a button: copies the text of element ID; shows data-copied for 2 s.
   data-autosubmit         on a select: submits its form when the choice changes.
   data-confirm="message"  on a form: asks confirm(message) before it is submitted.
   data-tag-key, data-tag-value   on inputs: the tag rules (F3.2) checked as you type; the messages
                           come from data-msg-required|length|chars|reserved on the input or on its
                           [data-max-tags] container, so the server renders them in the page's language.
   data-max-tags="20"      on a container of [data-tag-row] rows: counts them; a [data-add-tag] button
                           adds a row from the container's <template data-tag-template> and is disabled
                           at the limit; a [data-remove-tag] button removes its row; rows past the
                           limit are refused with data-msg-too-many.
   data-show-when="NAME=VALUE[|VALUE...]"   on an element: shown only while the control NAME of the
                           same form has one of the values; the controls inside a hidden element are
                           disabled meanwhile (so a hidden required field blocks nothing and is not sent).
*/
(function () {
  "use strict";

  var COPIED_MS = 2000;
  var TAG_TEXT_LIMIT = 128;
  var TAG_TEXT = /^[A-Za-z0-9 /\\_\-.+=:@]*$/;
  var RESERVED_TAG_PREFIXES = ["aliyun", "acs:"];
  var DEFAULT_MESSAGES = {
    required: "Enter a tag key.",
    length: "At most 128 characters.",
    chars: "Use only letters, digits, spaces and / \\ _ - . + = : @",
    reserved: "A tag key must not start with aliyun or acs:",
    tooMany: "At most 20 tags per key.",
  };

  function closestWithin(target, selector) {
    return target instanceof Element ? target.closest(selector) : null;
  }

  /* ---- Dialogs ---- */

  function openDialog(button) {
    var dialog = document.getElementById(button.getAttribute("data-open-dialog"));
    if (dialog instanceof HTMLDialogElement && !dialog.open) {
      dialog.showModal();
      var focus = dialog.querySelector("[autofocus]");
      if (focus instanceof HTMLElement) {
        focus.focus();
      }
    }
  }

  function closeDialog(button) {
    var dialog = button.closest("dialog");
    if (dialog instanceof HTMLDialogElement) {
      dialog.close();
    }
  }

  /* ---- Copy to the clipboard ---- */

  function textOf(element) {
    if (element instanceof HTMLInputElement || element instanceof HTMLTextAreaElement) {
      return element.value;
    }
    return element.textContent || "";
  }

  function copyBySelection(element, text) {
    // For plain-HTTP sites, where navigator.clipboard does not exist: select the text and copy it.
    var scratch = document.createElement("textarea");
    scratch.value = text;
    scratch.setAttribute("readonly", "");
    scratch.className = "visually-hidden";
    (element.closest("dialog") || document.body).appendChild(scratch);
    scratch.select();
    try {
      return document.execCommand("copy");
    } finally {
      scratch.remove();
    }
  }

  function showCopied(button) {
    var copied = button.getAttribute("data-copied");
    if (!copied) {
      return;
    }
    if (!button.hasAttribute("data-copy-label")) {
      button.setAttribute("data-copy-label", button.textContent || "");
    }
    button.textContent = copied;
    window.clearTimeout(Number(button.getAttribute("data-copy-timer") || 0));
    var timer = window.setTimeout(function () {
      button.textContent = button.getAttribute("data-copy-label") || "";
      button.removeAttribute("data-copy-timer");
    }, COPIED_MS);
    button.setAttribute("data-copy-timer", String(timer));
  }

  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      return;
    }
    var text = textOf(source);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () {
          showCopied(button);
        },
        function () {
          if (copyBySelection(source, text)) {
            showCopied(button);
          }
        }
      );
    } else if (copyBySelection(source, text)) {
      showCopied(button);
    }
  }

  /* ---- Tags (F3.2) ---- */

  function tagMessage(input, name) {
    var attribute = "data-msg-" + name.replace(/[A-Z]/g, function (upper) {
      return "-" + upper.toLowerCase();
    });
    var container = input.closest("[data-max-tags]");
    return (
      input.getAttribute(attribute) ||
      (container && container.getAttribute(attribute)) ||
      DEFAULT_MESSAGES[name]
    );
  }

  function tagProblem(input) {
    var value = input.value;
    var isKey = input.hasAttribute("data-tag-key");
    if (isKey && value === "") {
      // A row with neither key nor value is no tag; a value without a key is.
      var row = input.closest("[data-tag-row]");
      var partner = row && row.querySelector("[data-tag-value]");
      return partner && partner.value !== "" ? "required" : "";
    }
    if (Array.from(value).length > TAG_TEXT_LIMIT) {
      return "length";
    }
    if (!TAG_TEXT.test(value)) {
      return "chars";
    }
    if (isKey) {
      var lower = value.toLowerCase();
      for (var i = 0; i < RESERVED_TAG_PREFIXES.length; i += 1) {
        if (lower.indexOf(RESERVED_TAG_PREFIXES[i]) === 0) {
          return "reserved";
        }
      }
    }
    return "";
  }

  function setProblem(input, message) {
    input.setCustomValidity(message);
    if (message) {
      input.setAttribute("aria-invalid", "true");
    } else {
      input.removeAttribute("aria-invalid");
    }
  }

  function showRowError(row) {
    var target = row && row.querySelector("[data-tag-error]");
    if (!target) {
      return;
    }
    var message = "";
    row.querySelectorAll("[data-tag-key], [data-tag-value]").forEach(function (input) {
      message = message || input.validationMessage;
    });
    target.textContent = message;
    target.hidden = message === "";
  }

  function checkTagInput(input) {
    var problem = tagProblem(input);
    setProblem(input, problem ? tagMessage(input, problem) : "");
  }

  function checkTagContainer(container) {
    var limit = Number(container.getAttribute("data-max-tags")) || 0;
    var rows = Array.from(container.querySelectorAll("[data-tag-row]"));
    rows.forEach(function (row, index) {
      row.querySelectorAll("[data-tag-key], [data-tag-value]").forEach(checkTagInput);
      var key = row.querySelector("[data-tag-key]");
      if (key && limit && index >= limit && !key.validationMessage) {
        setProblem(key, tagMessage(key, "tooMany"));
      }
      showRowError(row);
    });
    container.querySelectorAll("[data-add-tag]").forEach(function (button) {
      button.disabled = Boolean(limit) && rows.length >= limit;
    });
  }

  function checkTags(input) {
    var container = input.closest("[data-max-tags]");
    if (container) {
      checkTagContainer(container);
    } else {
      var row = input.closest("[data-tag-row]");
      (row ? row.querySelectorAll("[data-tag-key], [data-tag-value]") : [input]).forEach(checkTagInput);
      showRowError(row);
    }
  }

  function addTagRow(button) {
    var container = button.closest("[data-max-tags]");
    var template = container && container.querySelector("template[data-tag-template]");
    if (!(template instanceof HTMLTemplateElement)) {
      return;
    }
    var rows = container.querySelector("[data-tag-rows]") || container;
    var fragment = template.content.cloneNode(true);
    var first = fragment.querySelector("input");
    rows.appendChild(fragment);
    checkTagContainer(container);
    if (first) {
      // The clone's inputs are now in the document; focus the new row's key.
      var added = rows.querySelectorAll("[data-tag-row]");
      var key = added.length ? added[added.length - 1].querySelector("input") : null;
      if (key) {
        key.focus();
      }
    }
  }

  function removeTagRow(button) {
    var row = button.closest("[data-tag-row]");
    var container = button.closest("[data-max-tags]");
    if (row) {
      row.remove();
    }
    if (container) {
      checkTagContainer(container);
    }
  }

  /* ---- Conditional sections ---- */

  function controlValues(scope, name) {
    var values = [];
    var controls = scope.querySelectorAll("[name]");
    for (var i = 0; i < controls.length; i += 1) {
      var control = controls[i];
      if (control.getAttribute("name") !== name) {
        continue;
      }
      if (control instanceof HTMLInputElement && (control.type === "radio" || control.type === "checkbox")) {
        if (control.checked) {
          values.push(control.value);
        }
      } else if (control instanceof HTMLSelectElement && control.multiple) {
        Array.from(control.selectedOptions).forEach(function (option) {
          values.push(option.value);
        });
      } else if ("value" in control) {
        values.push(control.value);
      }
    }
    return values;
  }

  function setShown(element, shown) {
    element.hidden = !shown;
    // A control is usable only while no enclosing conditional section is hidden (ancestors come first
    // in document order, so theirs are settled by now).
    var usable = shown && !(element.parentElement && element.parentElement.closest("[data-show-when][hidden]"));
    element.querySelectorAll("input, select, textarea, button").forEach(function (control) {
      if (!usable && !control.disabled) {
        control.disabled = true;
        control.setAttribute("data-hidden-disabled", "");
      } else if (usable && control.hasAttribute("data-hidden-disabled")) {
        control.disabled = false;
        control.removeAttribute("data-hidden-disabled");
      }
    });
  }

  function evaluateShowWhen(root) {
    var elements = Array.from(root.querySelectorAll("[data-show-when]"));
    if (root instanceof Element && root.hasAttribute("data-show-when")) {
      elements.unshift(root);
    }
    elements.forEach(function (element) {
      var rule = element.getAttribute("data-show-when") || "";
      var split = rule.indexOf("=");
      if (split < 1) {
        return;
      }
      var name = rule.slice(0, split);
      var wanted = rule.slice(split + 1).split("|");
      var scope = element.closest("form") || document;
      var shown = controlValues(scope, name).some(function (value) {
        return wanted.indexOf(value) !== -1;
      });
      setShown(element, shown);
    });
  }

  /* ---- Wiring ---- */

  function initialise(root) {
    evaluateShowWhen(root);
    var containers = Array.from(root.querySelectorAll("[data-max-tags]"));
    if (root instanceof Element && root.hasAttribute("data-max-tags")) {
      containers.unshift(root);
    }
    containers.forEach(checkTagContainer);
  }

  document.addEventListener("click", function (event) {
    var opener = closestWithin(event.target, "[data-open-dialog]");
    if (opener) {
      event.preventDefault();
      openDialog(opener);
      return;
    }
    var closer = closestWithin(event.target, "[data-close-dialog]");
    if (closer) {
      event.preventDefault();
      closeDialog(closer);
      return;
    }
    var copier = closestWithin(event.target, "[data-copy]");
    if (copier) {
      event.preventDefault();
      copy(copier);
      return;
    }
    var adder = closestWithin(event.target, "[data-add-tag]");
    if (adder) {
      event.preventDefault();
      addTagRow(adder);
      return;
    }
    var remover = closestWithin(event.target, "[data-remove-tag]");
    if (remover) {
      event.preventDefault();
      removeTagRow(remover);
    }
  });

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && (target.hasAttribute("data-tag-key") || target.hasAttribute("data-tag-value"))) {
      checkTags(target);
    }
  });

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) {
      return;
    }
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.requestSubmit();
      return;
    }
    evaluateShowWhen(target.closest("form") || document);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  });

  // Content htmx swaps in gets the same treatment as the page it lands in.
  document.addEventListener("htmx:load", function (event) {
    if (event.target instanceof Element) {
      initialise(event.target);
    }
  });

  initialise(document);
})();
