// Keyboard shortcuts: an element with data-key="k" is clicked when k is pressed, one with
// data-focus-key="k" is focused. In the queue, j/k move the selection and Enter opens it.
(function () {
  function typing(target) {
    return target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
  }
  function rows() { return Array.from(document.querySelectorAll("#queue tbody tr[data-href]")); }
  function move(step) {
    const all = rows();
    if (!all.length) return;
    let index = all.findIndex((row) => row.classList.contains("selected"));
    if (index >= 0) all[index].classList.remove("selected");
    index = Math.max(0, Math.min(all.length - 1, index + step));
    all[index].classList.add("selected");
    all[index].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.key === "j") return move(1);
    if (event.key === "k") return move(-1);
    if (event.key === "Enter" || event.key === "o") {
      const selected = document.querySelector("#queue tbody tr.selected[data-href]");
      if (selected) { window.location.href = selected.dataset.href; event.preventDefault(); }
      return;
    }
    const focus = document.querySelector('[data-focus-key="' + CSS.escape(event.key) + '"]');
    if (focus) { focus.focus(); event.preventDefault(); return; }
    const target = document.querySelector('[data-key="' + CSS.escape(event.key) + '"]');
    if (target) { target.click(); event.preventDefault(); }
  });
  document.addEventListener("click", function (event) {
    const row = event.target.closest && event.target.closest("#queue tbody tr[data-href]");
    if (row && event.target.tagName !== "A") window.location.href = row.dataset.href;
  });
})();
