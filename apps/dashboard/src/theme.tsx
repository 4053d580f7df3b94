// Light and dark: the system's preference unless the user chose one (kept in this browser).
import { useEffect, useState } from 'react';

type Theme = 'light' | 'dark';
const KEY = 'crucible.theme';

function systemTheme(): Theme {
  return window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** Applies the stored or system theme to <html data-theme>; call once before the first render. */
export function applyTheme(theme: Theme = (window.localStorage.getItem(KEY) as Theme | null) ?? systemTheme()): Theme {
  document.documentElement.dataset.theme = theme;
  return theme;
}

export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(() => (document.documentElement.dataset.theme as Theme | undefined) ?? applyTheme());
  useEffect(() => {
    // follow the system while the user has not chosen
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    const on = () => {
      if (!window.localStorage.getItem(KEY)) setTheme(applyTheme(systemTheme()));
    };
    mq?.addEventListener('change', on);
    return () => mq?.removeEventListener('change', on);
  }, []);
  const next: Theme = theme === 'dark' ? 'light' : 'dark';
  return (
    <button
      type="button"
      className="link theme-toggle"
      aria-pressed={theme === 'dark'}
      onClick={() => {
        window.localStorage.setItem(KEY, next);
        setTheme(applyTheme(next));
      }}
    >
      Dark mode
    </button>
  );
}
