// A button whose action is asked again before it is done: the first press
// offers "Yes" and "Keep", focus moves to "Yes", and keeping brings focus
// back, so keyboard and screen-reader users never lose their place.
import { useEffect, useRef, useState } from 'react';

export function ConfirmButton({
  label,
  confirm,
  keep = 'Keep',
  name,
  danger = false,
  disabled = false,
  onConfirm,
}: {
  /** The button's text. */
  label: string;
  /** The confirming button's text ("Yes, cancel it"). */
  confirm: string;
  keep?: string;
  /** The accessible name, when the text alone does not say what it acts on. */
  name?: string;
  danger?: boolean;
  disabled?: boolean;
  onConfirm: () => void;
}) {
  const [asking, setAsking] = useState(false);
  const yes = useRef<HTMLButtonElement>(null);
  const first = useRef<HTMLButtonElement>(null);
  // Focus follows the question: to "Yes" when asked, back when kept.
  const [moved, setMoved] = useState(false);
  useEffect(() => {
    if (!moved) return;
    (asking ? yes : first).current?.focus();
  }, [asking, moved]);
  if (asking) {
    return (
      <span className="row-actions">
        <button
          ref={yes}
          type="button"
          className={danger ? 'danger' : undefined}
          disabled={disabled}
          onClick={() => {
            setAsking(false);
            onConfirm();
          }}
        >
          {confirm}
        </button>
        <button
          type="button"
          className="secondary"
          onClick={() => {
            setMoved(true);
            setAsking(false);
          }}
        >
          {keep}
        </button>
      </span>
    );
  }
  return (
    <button
      ref={first}
      type="button"
      className="secondary"
      disabled={disabled}
      aria-label={name}
      onClick={() => {
        setMoved(true);
        setAsking(true);
      }}
    >
      {label}
    </button>
  );
}
