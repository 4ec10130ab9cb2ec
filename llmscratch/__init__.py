"""llmscratch: the small, tested package behind the book *LLM from Scratch*.

Each module is named after the concept it implements, and its docstring names the
chapter that teaches it. The book's pages import these modules and show their
source; they never re-type the code.
"""

__version__ = "0.1.0"
