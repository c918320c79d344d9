// The live tail: new events arrive over Server-Sent Events (/feed/sse); "Pause" closes the
// stream and remembers the last position, "Resume" reopens it from there, so nothing is
// missed while paused.
(function () {
  const rows = document.getElementById("tail-rows");
  const status = document.getElementById("tail-status");
  const button = document.getElementById("tail-toggle");
  const base = document.body.dataset.base;
  let last = Number(document.body.dataset.after);
  let source = null;

  function open() {
    source = new EventSource(base + "/feed/sse?after=" + last);
    status.textContent = "live";
    button.textContent = "Pause";
    source.onmessage = function (message) {
      const event = JSON.parse(message.data);
      last = event.position;
      const row = document.createElement("tr");
      const link = base + "/browse/events/" + event.position;
      row.innerHTML = "<td class=num></td><td><a></a></td><td class=type></td><td class=num></td><td class=muted></td>";
      row.children[0].textContent = event.position;
      row.children[1].firstChild.textContent = event.stream_id;
      row.children[1].firstChild.href = base + "/browse/streams/" + encodeURIComponent(event.stream_id);
      row.children[2].innerHTML = "<a></a>";
      row.children[2].firstChild.textContent = event.event_type;
      row.children[2].firstChild.href = link;
      row.children[3].textContent = event.version;
      row.children[4].textContent = event.recorded_at;
      rows.insertBefore(row, rows.firstChild);
      while (rows.children.length > 200) rows.removeChild(rows.lastChild);
    };
    source.addEventListener("error", function () { status.textContent = "reconnecting"; });
  }

  function pause() {
    source.close();
    source = null;
    status.textContent = "paused after position " + last;
    button.textContent = "Resume";
  }

  button.addEventListener("click", function () { source ? pause() : open(); });
  open();
})();
