// Loaded after RequireJS and before @jupyter-widgets/html-manager's embed-amd.js.

// embed-amd.js loads its icon fonts from the folder of the URL that RequireJS gives its modules:
// map that folder to the one this file is served from, the book's _static/html-manager/.
require.config({
  paths: {
    "@jupyter-widgets/html-manager/dist": new URL(".", document.currentScript.src).href.slice(0, -1),
  },
});

// The widgets typeset their labels with MathJax 2's MathJax.Hub.Queue; the book loads MathJax 3
// (deferred, so it has started by DOMContentLoaded; the widgets render later, on load).
document.addEventListener("DOMContentLoaded", () => {
  const mathjax = window.MathJax;
  if (mathjax && mathjax.startup && !mathjax.Hub) {
    mathjax.Hub = {
      Queue: ([, , element]) => mathjax.startup.promise.then(() => mathjax.typesetPromise([element])),
    };
  }
});
