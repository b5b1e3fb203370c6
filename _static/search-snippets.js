// Search result snippets show a page's text, not the labels of its header buttons.
// Sphinx's search takes a snippet from the page's [role="main"] element; in this theme that element also holds
// the article header (download, full-screen and sidebar buttons), whose labels (".md", ".pdf") would open every
// snippet. Drop that header before the text is taken.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined" || !Search.htmlToText) return;
  const htmlToText = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    page.querySelectorAll(".bd-header-article, .header-article-main, .prev-next-area").forEach((el) => el.remove());
    return htmlToText(page.documentElement.outerHTML, anchor);
  };
});
