"""The page-load instrument that ships with pushserve: ``pushserve bench SITE``.

The network every row is loaded through (``network``: the packet shaper of ``netns`` and
``wire``, or the latency proxy of ``proxy``), the engines that load the page (the browser-like
``loader`` with ``discovery``; headless Chromium in ``browser`` with its NetLog in ``netlog``;
Firefox over WebDriver BiDi in ``firefox`` and ``bidi``; what the browsers share in ``engine``),
the runner (``pageload``), the verdicts (``stats``) and the outputs (``har``, ``report``,
``filmstrip``, ``visual``).  It drives pushserve from outside; every process, browser and network
namespace it starts is taken down on the way out.  The repo's ``benchmarks/`` folder adds
comparisons with other servers on top of this package."""
